"""``imtl_g``: impartial multi-task learning, gradient part (Liu et al., ICLR 2021)."""

import jax
import jax.numpy as jnp

from mtl_jax.aggregators._base import Aggregator, register, stateless_from_matrix
from mtl_jax.aggregators._solvers import task_gramian, weighted_rows


def _weights_nonzero_first(gram_TxT: jax.Array, norm_T: jax.Array, live_T: jax.Array, eps: float):
  """Closed-form weights when the non-zero gradients come first (``live_T`` a prefix)."""
  m_TxT = gram_TxT / (norm_T + eps)[None, :]
  # g_1·(u_1 − u_t) and (g_1 − g_s)·(u_1 − u_t) for s, t ≥ 2.
  b_R = m_TxT[0, 0] - m_TxT[0, 1:]
  du_RxR = m_TxT[0, 0] - m_TxT[0, 1:][None, :] - m_TxT[1:, 0][:, None] + m_TxT[1:, 1:]
  # A zero gradient has no direction to project on: its constraint becomes α_t = 0.
  live_R = live_T[1:]
  both = live_R[:, None] & live_R[None, :]
  du_RxR = jnp.where(both, du_RxR, jnp.eye(du_RxR.shape[0], dtype=du_RxR.dtype))
  b_R = jnp.where(live_R, b_R, 0.0)
  # A pseudo-inverse keeps degenerate cases (identical or anti-parallel gradients) finite:
  # the equal-projection condition is then met by putting weight on g_1.
  rest_R = b_R @ jnp.linalg.pinv(du_RxR)
  return jnp.concatenate([1.0 - jnp.sum(rest_R, keepdims=True), rest_R])


def imtl_g_weights(gram_TxT: jax.Array, eps: float = 1e-8) -> jax.Array:
  """IMTL-G's closed-form weights from the Gramian.

  With u_i = g_i/‖g_i‖, D = [g_1 − g_t]_{t≥2} and U = [u_1 − u_t]_{t≥2}:
  α_{2..T} = g_1 Uᵀ (D Uᵀ)⁺ and α_1 = 1 − Σ_{t≥2} α_t. Every product is read off
  M_ij = g_i·u_j = G_ij / ‖g_j‖, so nothing of size P is formed.

  Zero gradients (‖g_t‖ ≤ eps) have no direction: they get α_t = 0 and no projection
  constraint, and the rows are reordered so that "task 1" (the reference) is the first
  non-zero one. Otherwise a zero row would force d·u_i = d·0 = 0 for every other task
  and the update would collapse to 0. This matches torchjd's generalisation (weights ∝
  G⁺ √diag G, Quinton & Rey 2024) on a zero row; unlike it, anti-parallel gradients keep
  the paper's answer (d = 0).

  Args:
    gram_TxT: the Gramian ``g gᵀ``.
    eps: added to ‖g_j‖ before dividing; norms ≤ eps count as zero.

  Returns:
    ``alpha_T`` summing to one (all weight on row 0 when every gradient is zero).
  """
  norm_T = jnp.sqrt(jnp.maximum(jnp.diagonal(gram_TxT), 0.0))
  live_T = norm_T > eps
  order = jnp.argsort(~live_T, stable=True)  # non-zero rows first, otherwise in order
  gram = gram_TxT[order][:, order]
  alpha = _weights_nonzero_first(gram, norm_T[order], live_T[order], eps)
  return jnp.zeros_like(alpha).at[order].set(alpha)


def imtl_loss_weights(scales_K: jax.Array, g_KxP: jax.Array, eps: float = 1e-8) -> jax.Array:
  """Weights w_K on the unscaled task gradients that give IMTL's update.

  IMTL-G runs on the gradients of the scaled losses, e^{s_i}∇L_i: with α = IMTL-G's weights
  of those rows, the update Σ α_i e^{s_i} g_i is Σ w_i g_i with w_i = α_i e^{s_i}.
  """
  scales = scales_K.astype(jnp.float32)
  gram = task_gramian(g_KxP)
  scaled_gram = scales[:, None] * gram * scales[None, :]
  return imtl_g_weights(scaled_gram, eps) * scales


@register("imtl_g")
def imtl_g(eps: float = 1e-8) -> Aggregator:
  """IMTL-G: Liu et al., "Towards Impartial Multi-task Learning", ICLR 2021 (Sec. 3.2).

  update = Σ_i α_i g_i with Σ_i α_i = 1, chosen so that the update has EQUAL projections
  onto every unit task gradient: d·u_i = d·u_j for all i, j (closed form, see
  ``imtl_g_weights``; solved on the Gramian in float32, HIGHEST precision, with a
  pseudo-inverse instead of the inverse). α may be negative. Scale: Σα = 1, so identical
  gradients g give g and T = 1 is the identity. At a Pareto-stationary point of two tasks
  (anti-parallel gradients) the update is 0. A zero gradient gets weight 0 and the update
  has equal projections on the other tasks' unit gradients.

  Args:
    eps: added to gradient norms before normalising (zero gradients stay finite).

  Returns:
    A stateless aggregator.
  """

  def fn(g_TxP):
    if g_TxP.shape[0] == 1:
      return g_TxP[0]
    gram_TxT = task_gramian(g_TxP)
    return weighted_rows(imtl_g_weights(gram_TxT, eps), g_TxP)

  return stateless_from_matrix(fn)
