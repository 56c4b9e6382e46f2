"""``upgrad``: Unconflicting Projection of Gradients (Quinton & Rey, 2024)."""

import jax
import jax.numpy as jnp

from mtl_jax.aggregators._base import register, stateless_from_matrix
from mtl_jax.aggregators._solvers import (
  dual_cone_gramian,
  project_weights_dual_cone,
  task_gramian,
  weighted_rows,
)


@register("upgrad")
def upgrad_aggregator(norm_eps: float = 1e-4, reg_eps: float = 1e-4, max_iters: int | None = None):
  """UPGrad: project each task gradient onto the dual cone, then average.

  Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization" (2024), the
  aggregator of torchjd. Each row ``g_i`` is projected onto the dual cone
  ``{x : g x ≥ 0}`` of all rows and the projections are averaged, which in weight space
  is ``w = Σ_i w⁽ⁱ⁾`` with ``w⁽ⁱ⁾ = argmin_{v ≥ e_i/T} vᵀGv`` (Prop. 1 of the paper);
  the update is ``Σ_j w_j g_j``.

  Conventions (those of torchjd's ``UPGrad()`` defaults):
    * Mean scale: non-conflicting gradients (all pairwise dots ≥ 0) give exactly the
      mean ``(1/T) Σ g_i``; identical gradients give that gradient; T = 1 is the
      identity.
    * The weights are computed from ``G / trace(G) + reg_eps · I``; if
      ``trace(G) = Σ‖g_i‖² < norm_eps`` the Gramian is treated as zero, so the weights
      fall back to the mean (``1/T`` each). ``reg_eps`` relaxes the guarantee to
      ``g_iᵀ update ≥ -reg_eps · trace(G) · w_i``; pass ``reg_eps=0`` for the exact
      cone when the gradients are linearly independent.
    * Solver: exact Lawson–Hanson active set per row (``project_weights_dual_cone``),
      T problems batched with ``vmap``, at most ``max_iters`` (default ``4T + 10``)
      masked T×T solves each.
    * Zero rows are fine: a zero ``g_i`` only adds ``reg_eps`` to the QP.

  Args:
    norm_eps: below this ``Σ‖g_i‖²`` the weights are the mean's.
    reg_eps: ridge added to the trace-normalised Gramian.
    max_iters: iteration cap of the QP solver.

  Returns:
    A stateless aggregator.
  """

  def fn(g_TxP):
    t = g_TxP.shape[0]
    gram = dual_cone_gramian(task_gramian(g_TxP), norm_eps, reg_eps)
    u_TxT = jnp.eye(t, dtype=gram.dtype) / t
    w_TxT = jax.vmap(lambda u: project_weights_dual_cone(u, gram, max_iters))(u_TxT)
    return weighted_rows(jnp.sum(w_TxT, axis=0), g_TxP)

  return stateless_from_matrix(fn)
