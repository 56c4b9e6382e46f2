"""``gradnorm``: gradient normalisation (Chen, Badrinarayanan, Lee & Rabinovich, 2018)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mtl_jax.weighting import _checks
from mtl_jax.weighting._base import Weighting, register, resolve_ids

_TINY = 1e-12  # guards L_i(0) = 0 and mean(L̃) = 0 against division by zero


class GradNormState(NamedTuple):
  """Per-task state, every field sized T."""

  weights: jax.Array  # w_i, float32, Σ_i w_i = T
  initial_losses: jax.Array  # L_i(0), recorded the first time task i is sampled
  seen: jax.Array  # bool, whether L_i(0) has been recorded


@register("gradnorm")
def gradnorm(
  alpha: float = 1.5, learning_rate: float = 0.025, min_weight: float = 1e-3
) -> Weighting:
  """Learns weights that balance the tasks' gradient norms at the last shared layer.

  Chen et al., "GradNorm: Gradient Normalization for Adaptive Loss Balancing in Deep
  Multitask Networks", ICML 2018. With G_i = w_i ‖∇_W L_i‖ (``grad_norms`` are the norms
  of the *unweighted* losses, so G_i = w_i · grad_norms_i for w_i > 0), Ḡ the mean of G over
  the sampled tasks, L̃_i = L_i / L_i(0) and r_i = L̃_i / mean(L̃), one gradient step on
  L_grad = Σ_i |G_i − Ḡ r_i^α| with the target Ḡ r_i^α held constant:
  ∂L_grad/∂w_i = sign(G_i − target_i) · grad_norms_i.

  Conventions: the returned weights are those from *before* this step's update (the w_i(t)
  the paper multiplies L_i(t) by); the new weights are clamped to ≥ ``min_weight`` and
  renormalised so that Σ w = T over all T tasks (sampled or not), so they start at 1, a
  K < T batch's weights need not sum to K, and T = 1 always gives 1. L_i(0) is the loss the
  first time task i is sampled; losses are assumed > 0 (as for any loss ratio). Plain
  gradient descent on w, as in the paper.

  Requires the extra ``grad_norms``: [K] norms ‖∇_W L_k‖ of the sampled tasks' unweighted
  losses w.r.t. the last shared layer's weights W.

  Args:
    alpha: asymmetry α ≥ 0 (α = 0 equalises the gradient norms; the paper uses 0.12–3).
    learning_rate: step size for w (> 0); the paper's 0.025.
    min_weight: floor applied before renormalising (> 0), keeps every weight positive.

  Returns:
    A ``Weighting`` whose state is a ``GradNormState``.
  """
  alpha = _checks.number("gradnorm", "alpha", alpha, low=0)
  lr = _checks.number("gradnorm", "learning_rate", learning_rate, low=0, strict_low=True)
  floor = _checks.number("gradnorm", "min_weight", min_weight, low=0, strict_low=True)

  def init(num_tasks):
    t = _checks.num_tasks("gradnorm", num_tasks)
    return GradNormState(
      weights=jnp.ones((t,), jnp.float32),
      initial_losses=jnp.ones((t,), jnp.float32),
      seen=jnp.zeros((t,), bool),
    )

  def update(losses, state, task_ids=None, *, grad_norms=None, **extra):
    del extra
    if grad_norms is None:
      raise ValueError("gradnorm: update needs the extra grad_norms ([K] norms ‖∇_W L_k‖)")
    ids = resolve_ids(losses, task_ids)
    loss = jax.lax.stop_gradient(losses).astype(jnp.float32)
    norms = jax.lax.stop_gradient(grad_norms).astype(jnp.float32)

    l0 = jnp.where(state.seen[ids], state.initial_losses[ids], loss)
    w = state.weights[ids]
    g = w * norms
    ratio = loss / jnp.maximum(l0, _TINY)
    r = ratio / jnp.maximum(jnp.mean(ratio), _TINY)
    target = jnp.mean(g) * r**alpha
    w_new = jnp.maximum(w - lr * jnp.sign(g - target) * norms, floor)

    all_w = state.weights.at[ids].set(w_new)
    all_w = all_w * (all_w.shape[0] / jnp.sum(all_w))
    state = GradNormState(
      weights=all_w,
      initial_losses=state.initial_losses.at[ids].set(l0),
      seen=state.seen.at[ids].set(True),
    )
    return w.astype(losses.dtype), state

  return Weighting(init, update, requires=("grad_norms",))
