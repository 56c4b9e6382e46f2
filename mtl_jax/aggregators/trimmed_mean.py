"""``trimmed_mean``: coordinate-wise trimmed mean (Yin et al., ICML 2018)."""

import jax.numpy as jnp

from mtl_jax.aggregators._base import Aggregator, register, stateless_from_matrix


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
  coordinate may come from different tasks.

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
    kept = jnp.sort(g_TxP, axis=0)[k : t - k]
    return jnp.mean(kept, axis=0, dtype=jnp.promote_types(g_TxP.dtype, jnp.float32)).astype(
      g_TxP.dtype
    )

  return stateless_from_matrix(fn)
