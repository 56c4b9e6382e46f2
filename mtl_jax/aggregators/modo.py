"""``modo``: multi-objective gradient with double sampling (Chen et al., NeurIPS 2023)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mtl_jax.aggregators._base import Aggregator, flatten_tasks, register, task_rows
from mtl_jax.aggregators._solvers import project_simplex, task_gramian, weighted_rows


class MoDoState(NamedTuple):
  """Per task id, with a leading ``max_tasks`` axis."""

  lam: jax.Array  # [max_tasks] weights λ (renormalised over the sampled tasks when read)


def lambda_step(lam_K, cross_gram_KxK, gamma, rho):
  """λ ← Π_Δ(λ − γ(G₁G₂ᵀλ + ρλ)), from λ renormalised onto the simplex.

  ``cross_gram_KxK`` is G₁G₂ᵀ, the dot products between two gradient samples (the same
  sample twice gives the Gramian).
  """
  total = jnp.sum(lam_K)
  lam = jnp.where(total > 0, lam_K / jnp.where(total > 0, total, 1.0), 1.0 / lam_K.shape[0])
  cross = cross_gram_KxK.astype(lam.dtype)
  return project_simplex(lam - gamma * (cross @ lam + rho * lam))


@register("modo")
def modo(gamma: float = 1e-3, rho: float = 0.1, max_tasks: int = 64) -> Aggregator:
  """MoDo: Chen, Fernando, Ying & Chen, "Three-Way Trade-Off in Multi-Objective Learning:
  Optimization, Generalization and Conflict-Avoidance", NeurIPS 2023.

  Each step: weights λ ← Π_Δ(λ − γ(G₁G₂ᵀλ + ρλ)) (one projected gradient step on
  ½‖Gᵀλ‖² + ½ρ‖λ‖² over the simplex Δ, kept across steps), then update = G₃ᵀλ =
  Σ_i λ_i g_i with the new λ (the paper's Algorithm 1 with constant γ; LibMTL's ``MoDo``).

  Conventions and differences:
    * Single sample: the paper draws three independent gradient samples a step, G₁ and G₂
      for the λ-step (so that G₁G₂ᵀ is an unbiased estimate of the true Gramian) and G₃
      for the update. An aggregator gets one gradient per task, so G₁ = G₂ = G₃ = G here:
      the λ-step uses the sampled Gramian GGᵀ, noise included. In that form MoDo is MoCo
      without tracking (``moco`` with β = 1).
    * Scale: λ is on the simplex (mean-like scale). Identical gradients and T = 1 give g.
    * γ acts on the Gramian in the gradients' units: no normalisation (as the paper and
      LibMTL), so with small gradients λ barely leaves its start (uniform: the mean).
    * State per task id (``max_tasks``, filled with T by the train step): λ, read and
      written at ``task_ids``; the sampled rows are renormalised onto Δ first (K < T).
    * Extras: ``task_ids``.

  Args:
    gamma: step size γ > 0 of λ (LibMTL's default 1e-3).
    rho: ℓ2 regularisation ρ ≥ 0 of λ's objective (LibMTL's default 0.1).
    max_tasks: number of task ids the state holds.

  Returns:
    An aggregator with state :class:`MoDoState` (λ starts uniform).
  """
  if not gamma > 0.0:
    raise ValueError(f"modo gamma must be > 0, got {gamma}")
  if not rho >= 0.0:
    raise ValueError(f"modo rho must be >= 0, got {rho}")
  if not (isinstance(max_tasks, int) and max_tasks >= 1):
    raise ValueError(f"modo max_tasks must be an int >= 1, got {max_tasks!r}")

  def init(params):
    dtype = jnp.promote_types(jnp.result_type(*jax.tree.leaves(params), jnp.float32), jnp.float32)
    return MoDoState(lam=jnp.ones((max_tasks,), dtype))

  def update(per_task_grads, state, params=None, task_ids=None, **extra):
    del params, extra
    g_KxP, unflatten = flatten_tasks(per_task_grads)
    ids = task_rows("modo", g_KxP.shape[0], task_ids, max_tasks)
    # One sample: G₁G₂ᵀ is the Gramian of g, and G₃ = g.
    lam = lambda_step(state.lam[ids], task_gramian(g_KxP), gamma, rho)
    d_P = weighted_rows(lam, g_KxP).astype(g_KxP.dtype)
    return unflatten(d_P), MoDoState(lam=state.lam.at[ids].set(lam))

  return Aggregator(init, update)
