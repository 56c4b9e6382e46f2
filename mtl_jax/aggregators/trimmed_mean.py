"""``trimmed_mean``: coordinate-wise trimmed mean (Yin et al., ICML 2018)."""

import jax
import jax.numpy as jnp

from mtl_jax.aggregators._base import Aggregator, register, stateless_from_matrix
from mtl_jax.aggregators._solvers import weighted_rows

# Up to this many values trimmed at each end, k passes of max/min replace the sort.
_SORT_ABOVE = 4


def _extremes_sum(g_TxP: jax.Array, k: int, largest: bool) -> jax.Array:
  """Per coordinate, the sum of the k largest (or smallest) of the T values (ties: once each)."""
  if k == 1:  # one value per end (one copy of a tied extreme): a scan of elementwise
    # max/min over the rows, which XLA's CPU backend vectorises (a reduction along the task
    # axis is ~5x slower) while the program stays the same size whatever T
    pick = jnp.maximum if largest else jnp.minimum
    out, _ = jax.lax.scan(lambda acc, row: (pick(acc, row), None), g_TxP[0], g_TxP[1:])
    return out
  rows = jnp.arange(g_TxP.shape[0])[:, None]
  fill = -jnp.inf if largest else jnp.inf
  total = jnp.zeros(g_TxP.shape[1:], g_TxP.dtype)
  for _ in range(k):
    i_P = jnp.argmax(g_TxP, 0) if largest else jnp.argmin(g_TxP, 0)
    total = total + jnp.take_along_axis(g_TxP, i_P[None], 0)[0]
    g_TxP = jnp.where(rows == i_P[None], fill, g_TxP)
  return total


@register("trimmed_mean")
def trimmed_mean(trim_number: int = 1) -> Aggregator:
  """Coordinate-wise trimmed mean of the task gradients.

  Yin, Chen, Ramchandran & Bartlett, "Byzantine-Robust Distributed Learning: Towards
  Optimal Statistical Rates", ICML 2018, as torchjd's ``TrimmedMean``: in every coordinate
  p, drop the ``trim_number`` largest and the ``trim_number`` smallest of the T values
  g_1p..g_Tp and average the T − 2·trim_number left.

  Conventions: mean scale (identical gradients g give g; ``trim_number=0`` is ``mean``).
  torchjd raises when T < 2·trim_number + 1; here, since the number of sampled tasks K
  can be small, the trim is clamped to ⌊(T − 1)/2⌋ so that at least one value is left
  (T = 1 is the identity, T = 2 the mean). Not a weighted combination of the rows: each
  coordinate may come from different tasks. Computed as the coordinate sum minus the k
  largest and k smallest values (k ≤ 4; a sort along the task axis beyond), in float32 or
  wider.

  Args:
    trim_number: values dropped at each end of every coordinate (≥ 0).

  Returns:
    A stateless aggregator.
  """
  if isinstance(trim_number, bool) or not isinstance(trim_number, int) or trim_number < 0:
    raise ValueError(f"trimmed_mean: trim_number must be an int >= 0, got {trim_number!r}")

  def fn(g_TxP):
    t = g_TxP.shape[0]
    k = min(trim_number, (t - 1) // 2)
    acc = jnp.promote_types(g_TxP.dtype, jnp.float32)
    if k > _SORT_ABOVE:
      kept = jnp.sort(g_TxP, axis=0)[k : t - k]
      return jnp.mean(kept, axis=0, dtype=acc).astype(g_TxP.dtype)
    # Few values trimmed: Σ − (k largest) − (k smallest) avoids sorting along the task axis
    # (a strided sort of [T, P] costs ~10 reductions of it on CPU).
    g = g_TxP.astype(acc)
    total = weighted_rows(jnp.ones((t,), acc), g)  # a matmul: faster than a reduction on CPU
    kept_sum = total - _extremes_sum(g, k, True) - _extremes_sum(g, k, False)
    return (kept_sum / (t - 2 * k)).astype(g_TxP.dtype)

  return stateless_from_matrix(fn)
