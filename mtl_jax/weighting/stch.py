"""``stch``: smooth Tchebycheff scalarisation (Lin, Zhang, Zhang, Liu & Zhang, 2024)."""

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mtl_jax.weighting import _checks
from mtl_jax.weighting._base import Weighting, register, resolve_ids

FORMS = ("linear", "log")
_LOG_EPS = 1e-20  # added inside log(L) as LibMTL does (losses must stay away from 0)


class LogStchState(NamedTuple):
  """State of ``form="log"``: steps seen and the warm-up loss sums behind the nadir point."""

  count: jax.Array  # int32 updates so far
  loss_sum: jax.Array  # [T] sum of each task's losses over the warm-up steps it was sampled
  loss_count: jax.Array  # [T] number of those steps


def _log_weights(losses, state: LogStchState, task_ids, mu: float, warmup_steps: int):
  """``form="log"``: 1/L during warm-up (Σ log L), then K·softmax(log(L/nadir)/μ)/L."""
  ids = resolve_ids(losses, task_ids)
  loss = jax.lax.stop_gradient(losses).astype(jnp.float32) + _LOG_EPS
  warm = state.count < warmup_steps
  loss_sum = state.loss_sum.at[ids].add(jnp.where(warm, loss, 0.0))
  loss_count = state.loss_count.at[ids].add(jnp.where(warm, 1.0, 0.0))
  seen = loss_count[ids] > 0
  nadir = jnp.where(seen, loss_sum[ids] / jnp.where(seen, loss_count[ids], 1.0), 1.0)
  main = losses.shape[0] * jax.nn.softmax(jnp.log(loss / nadir) / mu) / loss
  weights = jnp.where(warm, 1.0 / loss, main)
  return weights.astype(losses.dtype), LogStchState(state.count + 1, loss_sum, loss_count)


@register("stch")
def stch(
  mu: float = 1.0,
  ideal: float | Sequence[float] = 0.0,
  form: str = "linear",
  warmup_steps: int = 0,
) -> Weighting:
  """Smooth Tchebycheff weights; ``form="linear"`` (default) or ``"log"`` (LibMTL's).

  Lin et al., "Smooth Tchebycheff Scalarization for Multi-Objective Optimization", ICML
  2024: g_μ(L) = μ log Σ_i exp((L_i − z_i)/μ) smooths the Tchebycheff max_i (L_i − z_i)
  (uniform preference). Its gradient is Σ_i softmax_i ∇L_i, so minimising
  Σ_k stop_gradient(w_k) L_k with these weights follows it (up to the factor K).

  ``form="linear"``: weights = K·softmax((L − z)/μ). They sum to K over the sampled tasks
  (mean 1, the scale of ``equal``; the paper's softmax sums to 1), the softmax taken over
  the K sampled tasks; equal losses give weight 1 each and T = 1 always gives 1. As μ → 0
  the weights become K on the task with the largest L_i − z_i (the Tchebycheff max); as
  μ → ∞ they become 1 (``equal``). Stateless.

  ``form="log"`` (the authors' MTL code, as in LibMTL's STCH): for the first
  ``warmup_steps`` updates minimise Σ log L_i (weights 1/L_i) while averaging each task's
  loss into a nadir point n_i; then minimise K·μ log Σ_i exp(log(L_i/n_i)/μ), whose
  gradient weights are w_i = K·softmax(log(L/n)/μ)_i / L_i (units of 1/loss; with μ = 1,
  w_i = K (1/n_i) / Σ_j L_j/n_j). Differences: LibMTL counts warm-up in epochs and
  averages the losses of the last warm-up epoch only; here steps, averaged over the whole
  warm-up (a task never sampled during it, or ``warmup_steps=0``, has n_i = 1). 1e-20 is
  added to L inside the log. State: ``LogStchState``.

  Args:
    mu: smoothing μ > 0, in the units of the losses (of log L for ``form="log"``).
    ideal: the ideal point z of ``form="linear"``, one number for all tasks or one per task
      (length T, checked at ``init``). A common offset does not change the weights; 0
      suits losses ≥ 0.
    form: ``"linear"`` ((L − z)/μ) or ``"log"`` (log(L/nadir)/μ with a warm-up).
    warmup_steps: ``form="log"`` only: steps of Σ log L that fix the nadir point.

  Returns:
    A ``Weighting``.
  """
  mu = _checks.number("stch", "mu", mu, low=0, strict_low=True)
  form = _checks.choice("stch", "form", form, FORMS)
  if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
    raise ValueError(f"stch: warmup_steps must be an int >= 0, got {warmup_steps!r}")
  per_task = np.ndim(ideal) > 0
  z = (
    _checks.vector("stch", "ideal", ideal)
    if per_task
    else (_checks.number("stch", "ideal", ideal),)
  )
  if form == "log" and any(z):
    raise ValueError("stch: ideal is only used by form='linear' (form='log' uses a nadir point)")
  if form == "linear" and warmup_steps:
    raise ValueError("stch: warmup_steps is only used by form='log'")

  def init(num_tasks):
    t = _checks.num_tasks("stch", num_tasks)
    if per_task and len(z) != t:
      raise ValueError(f"stch ideal: expected {t} values (one per task), got {len(z)}")
    if form == "log":
      zeros = jnp.zeros((t,), jnp.float32)
      return LogStchState(jnp.zeros([], jnp.int32), zeros, zeros)
    return optax.EmptyState()

  def update(losses, state, task_ids=None, **extra):
    del extra
    if form == "log":
      return _log_weights(losses, state, task_ids, mu, warmup_steps)
    z_k = jnp.asarray(z, jnp.float32)
    if per_task:
      z_k = z_k[resolve_ids(losses, task_ids)]
    loss = jax.lax.stop_gradient(losses).astype(jnp.float32)
    weights = losses.shape[0] * jax.nn.softmax((loss - z_k) / mu)
    return weights.astype(losses.dtype), state

  return Weighting(init, update)
