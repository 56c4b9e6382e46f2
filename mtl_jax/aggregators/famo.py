"""``famo``: Fast Adaptive Multitask Optimization (Liu et al., NeurIPS 2023)."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mtl_jax.aggregators._base import Aggregator, flatten_tasks, register, task_rows
from mtl_jax.aggregators._solvers import weighted_rows


class FAMOState(NamedTuple):
  """Per task id, every field with a leading ``max_tasks`` axis."""

  xi: jax.Array  # task logits ξ, float32
  prev_log_loss: jax.Array  # log(L_i + eps) when task i was last aggregated, float32
  seen: jax.Array  # bool: task i has a recorded loss
  opt_state: Any  # per-task optax state of ξ (a vmapped init)


def famo_weights(xi_K: jax.Array, losses_K: jax.Array, eps: float) -> jax.Array:
  """a_i = z_i / (c (L_i + eps)) with z = softmax(ξ), c = Σ_j z_j / (L_j + eps); Σ a = 1.

  The gradient of Σ_i z_i log(L_i + eps) / c (c held constant) is Σ_i a_i ∇L_i.
  """
  z = jax.nn.softmax(xi_K)
  r = z / (losses_K + eps)
  return r / jnp.sum(r)


def xi_gradient(xi_K: jax.Array, delta_K: jax.Array) -> jax.Array:
  """J_zᵀ δ for z = softmax(ξ): z_i (δ_i − Σ_j z_j δ_j) (FAMO's ξ gradient before decay)."""
  z = jax.nn.softmax(xi_K)
  return z * (delta_K - jnp.dot(z, delta_K))


def _check(w_lr, gamma, optimizer, eps, max_tasks):
  if not w_lr > 0:
    raise ValueError(f"famo w_lr must be > 0, got {w_lr}")
  if not gamma >= 0:
    raise ValueError(f"famo gamma must be >= 0, got {gamma}")
  if optimizer not in ("adam", "sgd"):
    raise ValueError(f"famo optimizer must be one of ['adam', 'sgd'], got {optimizer!r}")
  if not eps > 0:
    raise ValueError(f"famo eps must be > 0, got {eps}")
  if not max_tasks >= 1:
    raise ValueError(f"famo max_tasks must be >= 1, got {max_tasks}")


def _step_logits(opt, state: FAMOState, ids, log_loss_K):
  """ξ of the sampled tasks after FAMO's logit step on δ = log L_prev − log L (new state)."""
  xi, seen = state.xi[ids], state.seen[ids]
  delta = jnp.where(seen, state.prev_log_loss[ids] - log_loss_K, 0.0)
  opt_k = jax.tree.map(lambda x: x[ids], state.opt_state)
  step, new_opt_k = jax.vmap(opt.update)(xi_gradient(xi, delta), opt_k, xi)
  # No recorded loss among the sampled tasks: nothing to learn from, leave ξ and the
  # optimiser (its step count included) alone, as the authors skip the first step.
  act = jnp.any(seen)
  xi = jnp.where(act, xi + step, xi)
  new_opt_k = jax.tree.map(lambda n, o: jnp.where(act, n, o), new_opt_k, opt_k)
  opt_state = jax.tree.map(lambda x, r: x.at[ids].set(r), state.opt_state, new_opt_k)
  return FAMOState(
    xi=state.xi.at[ids].set(xi),
    prev_log_loss=state.prev_log_loss.at[ids].set(log_loss_K),
    seen=state.seen.at[ids].set(True),
    opt_state=opt_state,
  )


@register("famo")
def famo(
  w_lr: float = 0.025,
  gamma: float = 1e-3,
  optimizer: str = "adam",
  eps: float = 1e-8,
  max_tasks: int = 64,
) -> Aggregator:
  """FAMO: Liu, Liu, Jin, Stone & Liu, "FAMO: Fast Adaptive Multitask Optimization",
  NeurIPS 2023 (Algorithm 1; the authors' ``famo.py`` and LibMTL's ``FAMO``).

  Update: Σ_i a_i g_i with a_i = z_i / (c (L_i + eps)), z = softmax(ξ) over the sampled
  tasks and c = Σ_j z_j / (L_j + eps), i.e. the gradient of Σ_i z_i log(L_i + eps) / c; the
  weights sum to 1 (T = 1 is the identity; equal ξ gives Σ_i g_i / L_i normalised by
  Σ_i 1/L_i). Logits: each call first updates ξ from δ_i = log L_i(prev) − log L_i(now)
  with the gradient J_zᵀδ, z_i(δ_i − Σ_j z_j δ_j), plus weight decay γξ, step ``w_lr``,
  then weighs with the new ξ (as LibMTL, which uses the next step's losses as the "after"
  losses; the authors re-evaluate the same batch after the step).

  Conventions and differences:
    * Cost: here FAMO receives per-task gradients like every aggregator, so it pays the
      per-task-gradient path (K backward passes); the original needs one backward of the
      weighted loss. It is offered as an aggregator because it needs the previous losses
      keyed by task id; the update equals that one backward's gradient of θ^sh.
    * ``optimizer="adam"`` (default) is the authors' and LibMTL's Adam on ξ with L2 weight
      decay γ (torch's ``weight_decay``); ``"sgd"`` is the paper's plain step
      ξ ← ξ − β(J_zᵀδ + γξ). Defaults: ``w_lr=0.025`` (theirs), ``gamma=1e-3`` (authors
      0.01, LibMTL 1e-5). Minimum losses are 0 (the authors' default); no gradient-norm
      clipping (authors: ``max_norm=1``).
    * State per task id (``max_tasks``, filled with T by the train step): ξ, the last
      log-loss and a per-task optimiser slot. With K < T tasks sampled, z is the softmax over
      the sampled tasks' ξ, and δ_i compares task i's loss with the last step it was
      sampled (possibly several θ updates ago); a task seen for the first time has δ_i = 0.
      The ξ step is skipped (optimiser untouched) while no sampled task has a recorded loss.
    * Extras: ``losses`` (``[K]``, the sampled tasks' losses) and ``task_ids``. Without
      ``losses`` every loss is taken as 1 (weights softmax(ξ), the mean at the start).

  Args:
    w_lr: step size of ξ (> 0).
    gamma: weight decay of ξ (≥ 0).
    optimizer: ``"adam"`` or ``"sgd"`` for ξ.
    eps: added to each loss before the log and the division (> 0).
    max_tasks: number of task ids the state holds.

  Returns:
    An aggregator with state :class:`FAMOState`.
  """
  _check(w_lr, gamma, optimizer, eps, max_tasks)
  base = optax.adam(w_lr) if optimizer == "adam" else optax.sgd(w_lr)
  opt = optax.chain(optax.add_decayed_weights(gamma), base)

  def init(params):
    del params
    xi = jnp.zeros((max_tasks,), jnp.float32)
    return FAMOState(
      xi=xi,
      prev_log_loss=jnp.zeros((max_tasks,), jnp.float32),
      seen=jnp.zeros((max_tasks,), bool),
      opt_state=jax.vmap(opt.init)(xi),
    )

  def update(per_task_grads, state, params=None, losses=None, task_ids=None, **extra):
    del params, extra
    g_TxP, unflatten = flatten_tasks(per_task_grads)
    k = g_TxP.shape[0]
    ids = task_rows("famo", k, task_ids, state.xi.shape[0])
    if losses is None:
      loss_K = jnp.ones((k,), jnp.float32)
    else:
      loss_K = jax.lax.stop_gradient(jnp.asarray(losses)).astype(jnp.float32)
    state = _step_logits(opt, state, ids, jnp.log(loss_K + eps))
    a_K = famo_weights(state.xi[ids], loss_K, eps)
    return unflatten(weighted_rows(a_K, g_TxP).astype(g_TxP.dtype)), state

  return Aggregator(init, update)
