"""``dualproj``: the mean gradient projected onto the dual cone (Quinton & Rey, 2024)."""

import jax.numpy as jnp

from mtl_jax.aggregators._base import register, stateless_from_matrix
from mtl_jax.aggregators._solvers import (
  dual_cone_gramian,
  project_weights_dual_cone,
  task_gramian,
  weighted_rows,
)


@register("dualproj")
def dualproj_aggregator(
  norm_eps: float = 1e-4, reg_eps: float = 1e-4, max_iters: int | None = None
):
  """DualProj: the mean of the task gradients, projected onto their dual cone.

  Baseline of Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization" (2024)
  (torchjd's ``DualProj``); the projection is Eq. 11 of Lopez-Paz & Ranzato's GEM (2017)
  applied to the mean. In weight space ``w = argmin_{v ≥ 1/T} vᵀGv``; the update is
  ``Σ_j w_j g_j``, the vector closest to the mean that conflicts with no task.

  Conventions (those of torchjd's ``DualProj()`` defaults):
    * Mean scale: when the mean already has a non-negative inner product with every
      task gradient (in particular for non-conflicting gradients) it is returned
      unchanged; identical gradients give that gradient; T = 1 is the identity.
    * The weights come from ``G / trace(G) + reg_eps · I``; if ``Σ‖g_i‖² < norm_eps``
      the Gramian is treated as zero and the update is the mean. ``reg_eps`` relaxes the
      guarantee to ``g_iᵀ update ≥ -reg_eps · trace(G) · w_i``.
    * Solver: exact Lawson–Hanson active set (``project_weights_dual_cone``), at most
      ``max_iters`` (default ``4T + 10``) masked T×T solves.

  Args:
    norm_eps: below this ``Σ‖g_i‖²`` the update is the mean.
    reg_eps: ridge added to the trace-normalised Gramian.
    max_iters: iteration cap of the QP solver.

  Returns:
    A stateless aggregator.
  """

  def fn(g_TxP):
    t = g_TxP.shape[0]
    gram = dual_cone_gramian(task_gramian(g_TxP), norm_eps, reg_eps)
    u_T = jnp.full((t,), 1.0 / t, gram.dtype)
    return weighted_rows(project_weights_dual_cone(u_T, gram, max_iters), g_TxP)

  return stateless_from_matrix(fn)
