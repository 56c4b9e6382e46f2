"""``nash_mtl``: multi-task learning as a bargaining game (Navon et al., ICML 2022)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mtl_jax.aggregators._base import Aggregator, flatten_tasks, register, task_rows
from mtl_jax.aggregators._solvers import task_gramian, weighted_rows


class NashMTLState(NamedTuple):
  beta: jax.Array  # [max_tasks] last β_i = ‖g_i‖·α_i per task id (0: never solved); [0] if unknown
  count: jax.Array  # int32 number of updates so far


def nash_solve(
  gram_TxT: jax.Array,
  beta0_T: jax.Array | None = None,
  max_iters: int = 30,
  tol: float = 1e-10,
  eps: float = 1e-6,
) -> jax.Array:
  """Solves ``G α = 1/α`` (α > 0) for the Gramian ``G = g gᵀ``.

  With n_i = ‖g_i‖, C the cosine matrix and β_i = n_i α_i the equation is C β = 1/β: the
  solution only depends on the gradients' directions, so it is solved on C + eps·I (every
  diagonal entry 1 + eps), which is scale-free. β is the unique minimiser of the
  self-concordant, strictly convex f(β) = ½ βᵀ(C + eps I)β − Σ log β_i, found by damped
  Newton (Nesterov's step 1/(1+λ), full steps once the Newton decrement λ < 1/4): every
  iterate stays positive, convergence is global and then quadratic. Newton systems are
  solved in the diagonally scaled form (βAβ + I) y = β∘∇f, well conditioned even when β
  spans orders of magnitude. ``lax.while_loop`` stops when λ² < tol or after
  ``max_iters`` steps.

  Args:
    gram_TxT: the Gramian ``g gᵀ``.
    beta0_T: warm start in the scale-free units β_i = ‖g_i‖·α_i (a previous solution
      for the same tasks); entries ≤ 0 fall back to the cold start. None starts from the
      minimiser of f along the ray through the all-ones vector.
    max_iters: Newton iteration cap.
    tol: stopping threshold on λ².
    eps: ridge on the cosine matrix; makes the solution exist and stay finite when G is
      singular (anti-parallel gradients). A zero gradient gets α_i = 0.

  Returns:
    ``alpha_T``: G α = 1/α up to the ridge, i.e. α_i g_iᵀ(Σ_j α_j g_j) = 1 - eps β_i².
  """
  t = gram_TxT.shape[0]
  dtype = gram_TxT.dtype
  tiny = jnp.finfo(dtype).tiny
  n_T = jnp.sqrt(jnp.maximum(jnp.diagonal(gram_TxT), 0.0))
  inv_n_T = jnp.where(n_T > 0, 1.0 / jnp.where(n_T > 0, n_T, 1.0), 0.0)
  a = gram_TxT * inv_n_T[:, None] * inv_n_T[None, :] + eps * jnp.eye(t, dtype=dtype)
  ones_T = jnp.ones((t,), dtype)
  beta_T = ones_T * jnp.sqrt(t / jnp.sum(a))  # minimises f along the ray through 1
  if beta0_T is not None:
    warm_T = beta0_T.astype(dtype)
    beta_T = jnp.where((warm_T > 0) & (n_T > 0), warm_T, beta_T)

  def cond(carry):
    it, _, dec2 = carry
    return (it < max_iters) & (dec2 > tol)

  def body(carry):
    it, beta_T, _ = carry
    scaled_grad_T = beta_T * (a @ beta_T) - 1.0  # β ∘ ∇f
    h_TxT = beta_T[:, None] * a * beta_T[None, :] + jnp.eye(t, dtype=dtype)
    y_T = jnp.linalg.solve(h_TxT, scaled_grad_T)
    dec2 = jnp.maximum(scaled_grad_T @ y_T, 0.0)
    step = jnp.where(dec2 < 1.0 / 16.0, 1.0, 1.0 / (1.0 + jnp.sqrt(dec2)))
    beta_T = beta_T * (1.0 - step * y_T)
    return it + 1, jnp.maximum(beta_T, tiny), dec2

  _, beta_T, _ = jax.lax.while_loop(cond, body, (jnp.array(0), beta_T, jnp.array(jnp.inf, dtype)))
  return beta_T * inv_n_T


def _clip(d_P: jax.Array, max_norm: float | None) -> jax.Array:
  if max_norm is None:
    return d_P
  return d_P * jnp.minimum(1.0, max_norm / jnp.maximum(jnp.linalg.norm(d_P), 1e-30))


def _keyed_alpha(gram_TxT, state, task_ids, max_tasks, every, solver):
  """α from the β table kept per task id (warm start or reuse); returns ``(α, new table)``."""
  n_T = jnp.sqrt(jnp.maximum(jnp.diagonal(gram_TxT), 0.0))
  rows = task_rows("nash_mtl", gram_TxT.shape[0], task_ids, max_tasks)
  warm_T = state.beta[rows].astype(gram_TxT.dtype)
  solve = lambda _: nash_solve(gram_TxT, warm_T, *solver)
  if every == 1:
    alpha_T = solve(None)
  else:  # reuse each task's last β between solves; solve if one was never solved
    due = (state.count % every == 0) | jnp.any(warm_T <= 0)
    reuse = lambda _: warm_T / jnp.where(n_T > 0, n_T, 1.0)
    alpha_T = jax.lax.cond(due, solve, reuse, None)
  return alpha_T, state.beta.at[rows].set((alpha_T * n_T).astype(state.beta.dtype))


@register("nash_mtl")
def nash_mtl(
  max_iters: int = 30,
  tol: float = 1e-10,
  eps: float = 1e-6,
  max_norm: float | None = None,
  update_weights_every: int = 1,
  max_tasks: int | None = None,
) -> Aggregator:
  """Nash-MTL: Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022.

  update = Σ_i α_i g_i with α > 0 the Nash bargaining solution, (g gᵀ) α = 1/α
  elementwise: every task gets g_iᵀ d = 1/α_i. α is solved EXACTLY in the gradients' units
  (see ``nash_solve``: damped Newton, no cvxpy), so ‖d‖² = αᵀGα = K whatever the gradient
  scale: the update has norm √K for K gradient rows (K = 1 gives g/‖g‖, before any
  ``max_norm``) and acts like a normalised gradient, so use a decaying learning rate to
  settle at a Pareto-stationary point (there G becomes singular, α grows and d keeps its
  norm).

  Differences from the authors' code: they divide GGᵀ by its Frobenius norm before solving
  and do not undo it (their α is sqrt(‖GGᵀ‖_F) times ours, so their update scales with
  ‖g‖²), solve with a sequence of cvxpy convex approximations (20 iterations), and clip
  the shared gradient norm at ``max_norm=1.0``. Here ``max_norm`` defaults to None (no
  clipping). On the train path each task's own parameters θ^i get its unweighted gradient
  (their code gives heads α_i ∇L_i; see ``docs/methods.md``).

  The solution only depends on the gradients' directions (β_i = ‖g_i‖ α_i solves C β = 1/β
  for the cosine matrix C), so it is solved on C: rescaling one task's loss leaves the
  update unchanged. Singular C (anti-parallel gradients, at Pareto-stationary points): a
  ridge ``eps`` on C keeps β finite; the identity α_i g_iᵀd = 1 then holds up to eps·β_i².
  A zero gradient gets α_i = 0 and the update stays finite.

  State (with ``max_tasks``): the last β per TASK ID, a ``[max_tasks]`` table read and
  written at ``task_ids`` (row k of the input is task k when ``task_ids`` is None). β is
  scale-free, so a warm start stays a good start when a task's gradient scale changes;
  0 means "never solved". Between solves (``update_weights_every > 1``) α_i = β_i/‖g_i‖
  is rebuilt from each task's own β and its current gradient norm; a step whose tasks
  include one never solved (or with a zero gradient) solves instead of reusing.

  Args:
    max_iters: Newton iteration cap (cold starts converge in under 10 steps on
      well-conditioned problems; near-singular ones take 20-30).
    tol: stopping threshold on the squared Newton decrement.
    eps: ridge on the cosine matrix.
    max_norm: clip ‖update‖ to this (the paper used 1.0); None for no clipping.
    update_weights_every: recompute α every this many updates, reusing each task's last
      β in between (the paper's speed-up); > 1 needs ``max_tasks``.
    max_tasks: T, the number of task ids (the train step fills it): the state then keeps
      β per task, used as the warm start and for ``update_weights_every``. Without it
      every update cold-starts. Task ids must be < ``max_tasks``.

  Returns:
    An aggregator with state ``NashMTLState(beta, count)``; ``update`` takes the extra
    ``task_ids`` (``[K]`` distinct ints).
  """
  if update_weights_every < 1:
    raise ValueError(f"update_weights_every must be >= 1, got {update_weights_every}")
  if update_weights_every > 1 and max_tasks is None:
    raise ValueError("update_weights_every > 1 needs max_tasks (to keep α in the state)")
  keep = max_tasks is not None
  every, solver = update_weights_every, (max_iters, tol, eps)

  def init(params):
    leaves = jax.tree.leaves(params)
    dtype = jnp.result_type(*leaves) if leaves else jnp.float32
    beta = jnp.zeros((max_tasks if keep else 0,), jnp.promote_types(dtype, jnp.float32))
    return NashMTLState(beta=beta, count=jnp.zeros([], jnp.int32))

  def update(per_task_grads, state, params=None, task_ids=None, **extra):
    del params, extra
    g_TxP, unflatten = flatten_tasks(per_task_grads)
    gram_TxT = task_gramian(g_TxP)
    if keep:
      alpha_T, beta = _keyed_alpha(gram_TxT, state, task_ids, max_tasks, every, solver)
    else:
      alpha_T, beta = nash_solve(gram_TxT, None, *solver), state.beta
    d_P = _clip(weighted_rows(alpha_T, g_TxP), max_norm)
    return unflatten(d_P), NashMTLState(beta=beta, count=state.count + 1)

  return Aggregator(init, update)
