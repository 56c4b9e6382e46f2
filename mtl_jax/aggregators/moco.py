"""``moco``: stochastic multi-objective gradient correction (Fernando et al., ICLR 2023)."""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mtl_jax.aggregators._base import Aggregator, flatten_tasks, register, task_rows
from mtl_jax.aggregators._solvers import project_simplex, task_gramian, weighted_rows


class MoCoState(NamedTuple):
  """Per task id, every field with a leading ``max_tasks`` axis."""

  y: jax.Array  # [max_tasks, P] tracked gradients, float32 or wider
  lam: jax.Array  # [max_tasks] weights λ (renormalised over the sampled tasks when read)
  seen: jax.Array  # [max_tasks] bool: task i has a tracked gradient


def track(y_KxP, seen_K, g_KxP, beta):
  """y ← y − β(y − g); a task seen for the first time starts at its gradient."""
  g = g_KxP.astype(y_KxP.dtype)
  return jnp.where(seen_K[:, None], y_KxP - beta * (y_KxP - g), g)


def lambda_step(lam_K, y_KxP, gamma, rho):
  """λ ← Π_Δ(λ − γ(Y Yᵀ + ρI)λ), starting from λ renormalised onto the simplex."""
  k = lam_K.shape[0]
  total = jnp.sum(lam_K)
  lam = jnp.where(total > 0, lam_K / jnp.where(total > 0, total, 1.0), 1.0 / k)
  gram = task_gramian(y_KxP).astype(lam.dtype)
  return project_simplex(lam - gamma * (gram @ lam + rho * lam))


@register("moco")
def moco(
  beta: float = 0.5, gamma: float = 0.1, rho: float = 0.0, max_tasks: int = 64
) -> Aggregator:
  """MoCo: Fernando, Shen, Liu, Chaudhury, Murugesan & Chen, "Mitigating Gradient Bias in
  Multi-objective Learning: A Provably Convergent Stochastic Approach", ICLR 2023.

  Each step: tracked gradients y_i ← y_i − β(y_i − g_i) (a running average that removes
  the bias of stochastic MGDA weights), weights λ ← Π_Δ(λ − γ(Y Yᵀ + ρI)λ) (one projected
  gradient step on ½λᵀ(YYᵀ + ρI)λ over the simplex Δ), update = Yᵀλ = Σ_i λ_i y_i, the
  paper's Algorithm 1 with constant step sizes β, γ (λ is updated with the new Y).

  Conventions and differences:
    * Scale: λ is on the simplex (mean-like scale). Identical gradients give g.
    * Initialisation: y_i starts at task i's first gradient (so T = 1 is the identity and
      a task first sampled late is not pulled towards 0); λ starts uniform. LibMTL's
      ``MoCo`` starts y at 0, decays β and γ as β/t^σ, γ/t^σ, replaces Π_Δ by a softmax
      and first rescales each g_i to norm L_i; none of that is done here.
    * γ acts on the Gramian in the gradients' units: no normalisation (as the paper).
    * State per task id (``max_tasks``, filled with T by the train step): y (P floats per
      task, ``max_tasks × P`` in all) and λ, read and written at ``task_ids``. With K < T
      the sampled tasks' λ are renormalised onto the simplex before the step.
    * Extras: ``task_ids``.

  Args:
    beta: tracking rate β in (0, 1].
    gamma: step size γ > 0 of λ.
    rho: ℓ2 regularisation ρ ≥ 0 of λ's objective.
    max_tasks: number of task ids the state holds.

  Returns:
    An aggregator with state :class:`MoCoState`; ``init`` sizes y from the shared parameters
    (P = 0 when nothing is shared).
  """
  if not 0.0 < beta <= 1.0:
    raise ValueError(f"moco beta must be in (0, 1], got {beta}")
  if not gamma > 0.0:
    raise ValueError(f"moco gamma must be > 0, got {gamma}")
  if not rho >= 0.0:
    raise ValueError(f"moco rho must be >= 0, got {rho}")

  def init(params):
    leaves = jax.tree.leaves(params)  # none when nothing is shared: y is then [max_tasks, 0]
    p = sum(math.prod(jnp.shape(l)) for l in leaves)
    dtype = jnp.promote_types(jnp.result_type(*leaves, jnp.float32), jnp.float32)
    return MoCoState(
      y=jnp.zeros((max_tasks, p), dtype),
      lam=jnp.ones((max_tasks,), dtype),
      seen=jnp.zeros((max_tasks,), bool),
    )

  def update(per_task_grads, state, params=None, task_ids=None, **extra):
    del params, extra
    g_KxP, unflatten = flatten_tasks(per_task_grads)
    k = g_KxP.shape[0]
    ids = task_rows("moco", k, task_ids, max_tasks)
    y = track(state.y[ids], state.seen[ids], g_KxP, beta)
    lam = lambda_step(state.lam[ids], y, gamma, rho)
    d_P = weighted_rows(lam, y).astype(g_KxP.dtype)
    state = MoCoState(
      y=state.y.at[ids].set(y), lam=state.lam.at[ids].set(lam), seen=state.seen.at[ids].set(True)
    )
    return unflatten(d_P), state

  return Aggregator(init, update)
