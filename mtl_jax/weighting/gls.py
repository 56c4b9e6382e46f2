"""``gls``: geometric loss strategy (Chennupati et al., 2019)."""

import jax
import jax.numpy as jnp
import optax

from mtl_jax.weighting import _checks
from mtl_jax.weighting._base import Weighting, register


@register("gls")
def gls(eps: float = 1e-8) -> Weighting:
  """Weights w_k = (Π_j L_j)^{1/K} / (K L_k): the gradient of the losses' geometric mean.

  Chennupati, Sistu, Yogamani & Rawashdeh, "MultiNet++: Multi-Stream Feature Aggregation
  and Geometric Loss Strategy for Multi-Task Learning", CVPR Workshops 2019. The objective
  is the geometric mean (Π_k L_k)^{1/K} of the K sampled losses; its gradient is
  Σ_k w_k ∇L_k with the weights above, so one backward pass of Σ_k sg(w_k) L_k gives
  exactly the gradient of the geometric mean (as LibMTL's ``GLS``, which backpropagates
  ``losses.prod() ** (1/K)``).

  Conventions: the weights are computed in log space, exp(mean_j log L_j − log L_k) / K, so
  a product of many small or large losses does not under- or overflow; each loss is floored
  at ``eps`` first. No normalisation beyond the 1/K of the mean: the weights are
  dimensionless (the update has the units of a loss gradient), equal losses give 1/K each,
  and T = 1 gives 1. Like ``scale_invariant``, a loss near 0 gets a large weight (the
  geometric mean has no minimum away from a zero loss), so losses should stay away from 0.
  Stateless; the geometric mean is over the K sampled tasks.

  Args:
    eps: floor on each loss (> 0).

  Returns:
    A ``Weighting``.
  """
  eps = _checks.number("gls", "eps", eps, low=0, strict_low=True)

  def init(num_tasks):
    _checks.num_tasks("gls", num_tasks)
    return optax.EmptyState()

  def update(losses, state, task_ids=None, **extra):
    del task_ids, extra
    log_l = jnp.log(jnp.maximum(jax.lax.stop_gradient(losses).astype(jnp.float32), eps))
    weights = jnp.exp(jnp.mean(log_l) - log_l) / losses.shape[0]
    return weights.astype(losses.dtype), state

  return Weighting(init, update)
