"""``mgda`` and ``mgda_ub``: multiple-gradient descent (Sener & Koltun, NeurIPS 2018)."""

import jax
import optax

from mtl_jax.aggregators._base import Aggregator, flatten_tasks, register, stateless_from_matrix
from mtl_jax.aggregators._solvers import min_norm_simplex, task_gramian, weighted_rows

_SCALES = {"mean": False, "sum": True}


def _check_scale(scale: str) -> None:
  if scale not in _SCALES:
    raise ValueError(f"scale must be one of {sorted(_SCALES)}, got {scale!r}")


def _weights(g_TxD: jax.Array, max_iters: int, tol: float, scale: str) -> jax.Array:
  gram_TxT = task_gramian(g_TxD)
  alpha_T = min_norm_simplex(gram_TxT, max_iters=max_iters, tol=tol)
  return alpha_T * g_TxD.shape[0] if _SCALES[scale] else alpha_T


@register("mgda")
def mgda(max_iters: int = 250, tol: float = 1e-6, scale: str = "mean") -> Aggregator:
  """MGDA: Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", 2018.

  update = Σ_i α_i g_i with α = argmin_{α ∈ simplex} ‖Σ_i α_i g_i‖², the min-norm point of
  the convex hull of the task gradients (Désidéri 2012). It is zero exactly at
  Pareto-stationary points and otherwise a direction that decreases every loss.

  Solver: pairwise Frank–Wolfe on the Gramian ``g gᵀ`` (float32, HIGHEST precision) with a
  closed-form line search, from uniform α, stopped when the Frank–Wolfe gap (relative to
  the largest squared gradient norm) drops below ``tol`` or after ``max_iters`` steps.
  No gradient normalisation (the paper's "none" variant); no eps.

  Args:
    max_iters: Frank–Wolfe iteration cap.
    tol: relative Frank–Wolfe gap at which the solver stops.
    scale: ``"mean"`` (default, the paper: Σα = 1, so identical gradients g give g) or
      ``"sum"`` (α multiplied by T, the scale of ``sum``).

  Returns:
    A stateless aggregator; T = 1 is the identity under both scales.
  """
  _check_scale(scale)
  return stateless_from_matrix(
    lambda g_TxP: weighted_rows(_weights(g_TxP, max_iters, tol, scale), g_TxP)
  )


@register("mgda_ub")
def mgda_ub(max_iters: int = 250, tol: float = 1e-6, scale: str = "mean") -> Aggregator:
  """MGDA-UB: the upper-bound variant of Sener & Koltun (2018), Section 3.3.

  α is solved, as in ``mgda``, on the gradients of the task losses with respect to the
  shared REPRESENTATION Z (cheap: one backward to Z, no per-task backward through the
  trunk), then applied to the per-task parameter gradients: update = Σ_i α_i g_i.

  The bound needs ONE shared representation Z = f(x; θ^sh) of the same examples for every
  task: with per-task inputs, row b of ∂L_i/∂Z and of ∂L_j/∂Z are different examples,
  their dot products are meaningless and the weights depend on the order of the examples.
  The train step therefore refuses ``mgda_ub`` on task sets without ``shared_inputs``
  (``mtl_jax.methods.check_inputs``); use ``mgda`` there.

  Extra keyword to ``update``:
    rep_grads: pytree (or array) with leading task axis T: ∂L_i/∂Z per task (e.g.
      ``[T, B, D]``); flattened per task. When absent, α is solved on ``per_task_grads``
      themselves, which makes ``mgda_ub`` identical to ``mgda``.

  Args:
    max_iters: Frank–Wolfe iteration cap.
    tol: relative Frank–Wolfe gap at which the solver stops.
    scale: ``"mean"`` (default, Σα = 1) or ``"sum"`` (α multiplied by T).

  Returns:
    A stateless aggregator; T = 1 is the identity.
  """
  _check_scale(scale)

  def init(params):
    del params
    return optax.EmptyState()

  def update(per_task_grads, state, params=None, *, rep_grads=None, **extra):
    del params, extra
    g_TxP, unflatten = flatten_tasks(per_task_grads)
    z_TxD = g_TxP if rep_grads is None else flatten_tasks(rep_grads)[0]
    if z_TxD.shape[0] != g_TxP.shape[0]:
      raise ValueError(f"rep_grads has {z_TxD.shape[0]} tasks, per_task_grads {g_TxP.shape[0]}")
    alpha_T = _weights(z_TxD.astype(g_TxP.dtype), max_iters, tol, scale)
    return unflatten(weighted_rows(alpha_T, g_TxP)), state

  return Aggregator(init, update)
