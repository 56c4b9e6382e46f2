"""``aligned_mtl``: Aligned-MTL (Senushkin et al., CVPR 2023)."""

import jax.numpy as jnp

from mtl_jax.aggregators._base import register, stateless_from_matrix
from mtl_jax.aggregators._solvers import task_gramian, weighted_rows


def balance_transform(gram_TxT, rank_rtol=None):
  """Aligned-MTL's balance matrix ``B = σ_min · V Λ^{-1/2} Vᵀ`` from the Gramian.

  Args:
    gram_TxT: ``G = g gᵀ``.
    rank_rtol: eigenvalues ``≤ rank_rtol · λ_max`` count as zero; ``None`` gives
      ``T · float_eps`` (numpy's ``matrix_rank`` rule on the Gramian).

  Returns:
    ``B_TxT``; ``B g`` has orthogonal rows of norm σ_min spanning the row space of g.
    The identity when every gradient is zero.
  """
  t = gram_TxT.shape[0]
  lam_T, v_TxT = jnp.linalg.eigh(gram_TxT)
  if rank_rtol is None:
    rank_rtol = t * jnp.finfo(gram_TxT.dtype).eps
  lam_max = jnp.max(lam_T)
  # Directions with (numerically) zero singular value carry no gradient: drop them
  # instead of dividing by them.
  keep = lam_T > rank_rtol * lam_max
  lam_min = jnp.min(jnp.where(keep, lam_T, jnp.inf))
  inv_sqrt = jnp.where(keep, 1.0 / jnp.sqrt(jnp.where(keep, lam_T, 1.0)), 0.0)
  b = jnp.sqrt(lam_min) * (v_TxT * inv_sqrt) @ v_TxT.T
  return jnp.where(jnp.any(keep), b, jnp.eye(t, dtype=gram_TxT.dtype))


@register("aligned_mtl")
def aligned_mtl_aggregator(reduction: str = "sum", rank_rtol: float | None = None):
  """Aligned-MTL: align the principal components of the gradients, then combine.

  Senushkin, Patakin, Kuznetsov & Konushin, "Independent Component Alignment for
  Multi-Task Learning" (CVPR 2023), Algorithm 1. With ``G = g gᵀ = V Λ Vᵀ`` and σ_min the
  smallest non-zero singular value of g, the aligned gradients ``ĝ = B g`` with
  ``B = σ_min V Λ^{-1/2} Vᵀ`` are orthogonal and all of norm σ_min (a condition number
  of one); the update is ``Σ_i w_i ĝ_i``.

  Conventions:
    * ``reduction="sum"`` (default): ``w_i = 1``, the paper's equal task weights as in
      LibMTL; ``"mean"``: ``w_i = 1/T``, torchjd's ``AlignedMTL()`` scale.
    * Scale is ``σ_min`` (the paper's choice; torchjd calls it ``scale_mode="min"``).
    * Rank deficiency (T > P, duplicated or zero rows): eigenvalues
      ``≤ rank_rtol · λ_max`` (default ``T · float_eps``) are masked, σ_min is taken over
      the rest. All rows zero gives a zero update.
    * T = 1 is the identity; T identical gradients g give ``T g`` (``"sum"``) or ``g``.
    * Solver: one ``eigh`` of the T×T Gramian, no iterations.

  Args:
    reduction: ``"sum"`` or ``"mean"`` of the aligned gradients.
    rank_rtol: relative eigenvalue threshold for the rank, ``None`` for the default.

  Returns:
    A stateless aggregator.
  """
  if reduction not in ("sum", "mean"):
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")

  def fn(g_TxP):
    t = g_TxP.shape[0]
    b_TxT = balance_transform(task_gramian(g_TxP), rank_rtol)
    # Σ_i w_i (B g)_i = (Bᵀ w)ᵀ g, and B is symmetric.
    w_T = jnp.sum(b_TxT, axis=0)
    if reduction == "mean":
      w_T = w_T / t
    return weighted_rows(w_T, g_TxP)

  return stateless_from_matrix(fn)
