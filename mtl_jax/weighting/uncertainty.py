"""``uncertainty``: homoscedastic-uncertainty weighting (Kendall, Gal & Cipolla, 2018)."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mtl_jax.weighting import _checks
from mtl_jax.weighting._base import Weighting, register, resolve_ids


class UncertaintyState(NamedTuple):
  """Learned log-variances and their optimiser's state, both with a leading task axis."""

  log_vars: jax.Array  # s_i = log σ_i², [T] float32
  opt_state: Any  # per-task optax state (a vmapped init), leaves [T, ...]


@register("uncertainty")
def uncertainty(
  learning_rate: float = 1e-2, optimizer: str = "adam", log_var_bound: float = 20.0
) -> Weighting:
  """Weights exp(−s_i), with s_i = log σ_i² learned to minimise Σ_i exp(−s_i) L_i + s_i.

  Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene
  Geometry and Semantics", CVPR 2018. We use the form exp(−s)L + s for every task; the
  paper's regression form ½exp(−s)L + ½s has the same minimiser (s = log L) and differs only
  by a factor ½ on the weights and on the step of s.

  The trainer only consumes weights, so s takes its own optimiser step inside ``update`` on
  ∂/∂s_i = 1 − exp(−s_i) L_i (losses under stop_gradient), as joint training of (θ, s) would.
  Only the sampled tasks' s_i and optimiser slots move; Adam keeps a step count per task.

  Conventions: weights are exp(−s) from *before* this step's s-update (the s the network
  sees in the same joint step); no normalisation, they start at 1 (T = 1 gives 1 on the first
  step) and approach 1/L_i. s is clipped to ±``log_var_bound`` so a loss that reaches 0 cannot
  push a weight to inf. Losses are assumed ≥ 0.

  Args:
    learning_rate: step size for s (> 0).
    optimizer: ``"adam"`` (default; step ≈ learning_rate whatever the loss scale) or ``"sgd"``.
    log_var_bound: |s| is clipped to this (> 0).

  Returns:
    A ``Weighting`` whose state is an ``UncertaintyState``.
  """
  lr = _checks.number("uncertainty", "learning_rate", learning_rate, low=0, strict_low=True)
  _checks.choice("uncertainty", "optimizer", optimizer, ("adam", "sgd"))
  bound = _checks.number("uncertainty", "log_var_bound", log_var_bound, low=0, strict_low=True)
  opt = optax.adam(lr) if optimizer == "adam" else optax.sgd(lr)

  def init(num_tasks):
    t = _checks.num_tasks("uncertainty", num_tasks)
    log_vars = jnp.zeros((t,), jnp.float32)
    # vmap gives every task its own optimiser slots (and Adam step count).
    return UncertaintyState(log_vars, jax.vmap(opt.init)(log_vars))

  def update(losses, state, task_ids=None, **extra):
    del extra
    ids = resolve_ids(losses, task_ids)
    s = state.log_vars[ids]
    weights = jnp.exp(-s)
    grad = 1.0 - weights * jax.lax.stop_gradient(losses).astype(jnp.float32)
    step, opt_k = jax.vmap(opt.update)(grad, _checks.gather(state.opt_state, ids))
    s = jnp.clip(s + step, -bound, bound)
    state = UncertaintyState(
      state.log_vars.at[ids].set(s), _checks.scatter(state.opt_state, ids, opt_k)
    )
    return weights.astype(losses.dtype), state

  return Weighting(init, update)
