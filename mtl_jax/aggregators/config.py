"""``config``: ConFIG, conflict-free inverse gradients (Liu et al., 2024)."""

import jax.numpy as jnp

from mtl_jax.aggregators._base import register, stateless_from_matrix
from mtl_jax.aggregators._solvers import task_gramian, weighted_rows


def _pinv_psd(m_TxT, rtol):
  """Pseudo-inverse of a symmetric PSD matrix, eigenvalues ``≤ rtol · λ_max`` dropped."""
  lam_T, v_TxT = jnp.linalg.eigh(m_TxT)
  keep = lam_T > rtol * jnp.max(lam_T)
  inv = jnp.where(keep, 1.0 / jnp.where(keep, lam_T, 1.0), 0.0)
  return (v_TxT * inv) @ v_TxT.T


@register("config")
def config_aggregator(rank_rtol: float | None = None):
  """ConFIG: the direction with equal cosine to every task gradient, at the sum's length.

  Liu, Chu, Thuerey, "ConFIG: Towards Conflict-free Training of Physics Informed Neural
  Networks" (ICLR 2025, arXiv:2408.11104), Eq. 2. With unit gradients
  ``u_i = g_i / ‖g_i‖`` stacked in U, ``d = pinv(U) 1`` is the least-norm vector with
  ``u_iᵀ d = 1`` for every i; the update is ``(Σ_i g_iᵀ d̂) d̂`` with ``d̂ = d / ‖d‖``.

  Conventions:
    * Sum scale (the paper's): T = 1 is the identity, T identical gradients g give
      ``T g``; in general the update's length is the sum's projection on d̂.
    * ``pinv(U) 1 = Uᵀ (UUᵀ)⁺ 1`` is computed from the T×T Gramian of the unit vectors
      (one ``eigh``, no SVD of the T×P matrix); eigenvalues ``≤ rank_rtol · λ_max``
      (default ``T · float_eps``) are dropped, so linearly dependent gradients get the
      least-squares direction.
    * eps handling: a zero row gets ``u_i = 0`` (it drops out, as in the reference
      code's ``nan_to_num``); ``d = 0`` (all rows zero) gives a zero update. For
      gradients so close to opposite that the pseudo-inverse drops a direction, d is
      the least-squares solution, so the result depends on rounding but stays bounded
      by the gradient norms.

  Args:
    rank_rtol: relative eigenvalue threshold of the pseudo-inverse.

  Returns:
    A stateless aggregator.
  """

  def fn(g_TxP):
    t = g_TxP.shape[0]
    gram = task_gramian(g_TxP)
    rtol = t * jnp.finfo(gram.dtype).eps if rank_rtol is None else rank_rtol
    norm_T = jnp.sqrt(jnp.maximum(jnp.diagonal(gram), 0.0))
    inv_norm_T = jnp.where(norm_T > 0, 1.0 / jnp.where(norm_T > 0, norm_T, 1.0), 0.0)
    unit_gram = gram * inv_norm_T[:, None] * inv_norm_T[None, :]
    # d = Σ_j a_j u_j with a = (UUᵀ)⁺ 1; everything below stays in T-space.
    a_T = _pinv_psd(unit_gram, rtol) @ jnp.ones((t,), gram.dtype)
    cos_T = unit_gram @ a_T  # u_iᵀ d
    d_sq = jnp.maximum(a_T @ cos_T, 0.0)  # ‖d‖²
    # (Σ_i g_iᵀ d) d / ‖d‖² with g_iᵀ d = ‖g_i‖ u_iᵀ d.
    length = jnp.where(d_sq > 0, (norm_T @ cos_T) / jnp.where(d_sq > 0, d_sq, 1.0), 0.0)
    return weighted_rows(length * a_T * inv_norm_T, g_TxP)

  return stateless_from_matrix(fn)
