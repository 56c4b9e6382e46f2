"""``stch``: smooth Tchebycheff scalarisation (Lin, Zhang, Zhang, Liu & Zhang, 2024)."""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mtl_jax.weighting import _checks
from mtl_jax.weighting._base import Weighting, register, resolve_ids


@register("stch")
def stch(mu: float = 1.0, ideal: float | Sequence[float] = 0.0) -> Weighting:
  """Weights = K·softmax((L − z)/μ), the gradient weights of K·μ·logsumexp((L − z)/μ).

  Lin et al., "Smooth Tchebycheff Scalarization for Multi-Objective Optimization", ICML
  2024: g_μ(L) = μ log Σ_i exp((L_i − z_i)/μ) smooths the Tchebycheff max_i (L_i − z_i)
  (uniform preference). Its gradient is Σ_i softmax_i ∇L_i, so minimising
  Σ_k stop_gradient(w_k) L_k with these weights follows it (up to the factor K).

  Conventions: the weights sum to K over the sampled tasks (mean 1, the scale of ``equal``;
  the paper's softmax sums to 1), the softmax taken over the K sampled tasks; equal losses
  give weight 1 each and T = 1 always gives 1. As μ → 0 the weights become K on the task
  with the largest L_i − z_i (the Tchebycheff max); as μ → ∞ they become 1 (``equal``).
  Stateless.

  Args:
    mu: smoothing μ > 0, in the units of the losses.
    ideal: the ideal point z, one number for all tasks or one per task (length T, checked
      at ``init``). A common offset does not change the weights; 0 suits losses ≥ 0.

  Returns:
    A ``Weighting``.
  """
  mu = _checks.number("stch", "mu", mu, low=0, strict_low=True)
  per_task = np.ndim(ideal) > 0
  if per_task:
    z = _checks.vector("stch", "ideal", ideal)
  else:
    z = (_checks.number("stch", "ideal", ideal),)

  def init(num_tasks):
    t = _checks.num_tasks("stch", num_tasks)
    if per_task and len(z) != t:
      raise ValueError(f"stch ideal: expected {t} values (one per task), got {len(z)}")
    return optax.EmptyState()

  def update(losses, state, task_ids=None, **extra):
    del extra
    z_k = jnp.asarray(z, jnp.float32)
    if per_task:
      z_k = z_k[resolve_ids(losses, task_ids)]
    loss = jax.lax.stop_gradient(losses).astype(jnp.float32)
    weights = losses.shape[0] * jax.nn.softmax((loss - z_k) / mu)
    return weights.astype(losses.dtype), state

  return Weighting(init, update)
