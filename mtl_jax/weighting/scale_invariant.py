"""``scale_invariant``: minimise Σ_i log L_i, i.e. weight each loss by 1/L_i."""

import jax
import jax.numpy as jnp
import optax

from mtl_jax.weighting import _checks
from mtl_jax.weighting._base import Weighting, register


@register("scale_invariant")
def scale_invariant(eps: float = 1e-8) -> Weighting:
  """Weights 1/max(L_i, eps): the gradient weights of Σ_i log L_i.

  The "scale-invariant" baseline of Navon et al., "Multi-Task Learning as a Bargaining
  Game", ICML 2022: ∇ Σ_i log L_i = Σ_i ∇L_i / L_i, so rescaling a task's loss by any
  constant leaves the update unchanged. (It is also the fixed point of ``uncertainty``,
  whose weights approach 1/L_i.)

  Conventions: no normalisation — the weights are 1/L_i, so T = 1 gives 1/L (not 1) and
  the step size has the units of 1/loss. Losses are assumed > 0 and bounded away from 0:
  Σ log L_i → −∞ as any L_i → 0, so a task whose loss can reach 0 takes over (``eps`` only
  caps such a weight at 1/eps). Stateless.

  Args:
    eps: floor on the loss (> 0).

  Returns:
    A ``Weighting``.
  """
  eps = _checks.number("scale_invariant", "eps", eps, low=0, strict_low=True)

  def init(num_tasks):
    _checks.num_tasks("scale_invariant", num_tasks)
    return optax.EmptyState()

  def update(losses, state, task_ids=None, **extra):
    del task_ids, extra
    loss = jax.lax.stop_gradient(losses).astype(jnp.float32)
    return (1.0 / jnp.maximum(loss, eps)).astype(losses.dtype), state

  return Weighting(init, update)
