"""``imtl_l``: the loss-balance part of Impartial Multi-Task Learning (Liu et al., 2021)."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mtl_jax.weighting import _checks
from mtl_jax.weighting._base import Weighting, register, resolve_ids


class IMTLLState(NamedTuple):
  """Learned loss scales and their optimiser's state, both with a leading task axis."""

  scales: jax.Array  # s_i, [T] float32; the weight of task i is exp(s_i)
  opt_state: Any  # per-task optax state (a vmapped init), leaves [T, ...]


@register("imtl_l")
def imtl_l(
  learning_rate: float = 1e-2, optimizer: str = "adam", scale_bound: float = 20.0
) -> Weighting:
  """Weights exp(s_i), with s_i learned to minimise Σ_i exp(s_i) L_i − s_i (IMTL-L).

  Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, "Towards Impartial Multi-task Learning",
  ICLR 2021, loss balance (IMTL-L): a learned scale s_i per task with the scaled loss
  e^{s_i} L_i − s_i, whose minimiser over s is s = −log L_i, so the scaled losses are driven
  towards 1 (every task's loss made "impartial"). Same form as ``uncertainty`` with s ↦ −s
  (as LibMTL's ``IMTL`` loss part, which learns ``loss_scale`` with the network's optimiser).

  The trainer only consumes weights, so s takes its own optimiser step inside ``update`` on
  ∂/∂s_i = exp(s_i) L_i − 1 (losses under stop_gradient), as joint training of (θ, s) would
  (mirrors ``uncertainty``). Only the sampled tasks' s_i and optimiser slots move; Adam
  keeps a step count per task.

  Conventions: weights are exp(s) from *before* this step's s-update; no normalisation:
  they start at 1 (T = 1 gives 1 on the first step) and approach 1/L_i. s is clipped to
  ±``scale_bound`` so a loss that reaches 0 cannot push a weight to inf. Losses are assumed
  ≥ 0. The paper combines IMTL-L with the gradient balance IMTL-G (``imtl_g`` here, an
  aggregator); this is the loss part alone.

  Args:
    learning_rate: step size for s (> 0).
    optimizer: ``"adam"`` (default; step ≈ learning_rate whatever the loss scale) or ``"sgd"``.
    scale_bound: |s| is clipped to this (> 0).

  Returns:
    A ``Weighting`` whose state is an ``IMTLLState``.
  """
  lr = _checks.number("imtl_l", "learning_rate", learning_rate, low=0, strict_low=True)
  _checks.choice("imtl_l", "optimizer", optimizer, ("adam", "sgd"))
  bound = _checks.number("imtl_l", "scale_bound", scale_bound, low=0, strict_low=True)
  opt = optax.adam(lr) if optimizer == "adam" else optax.sgd(lr)

  def init(num_tasks):
    t = _checks.num_tasks("imtl_l", num_tasks)
    scales = jnp.zeros((t,), jnp.float32)
    return IMTLLState(scales, jax.vmap(opt.init)(scales))

  def update(losses, state, task_ids=None, **extra):
    del extra
    ids = resolve_ids(losses, task_ids)
    s = state.scales[ids]
    weights = jnp.exp(s)
    grad = weights * jax.lax.stop_gradient(losses).astype(jnp.float32) - 1.0
    step, opt_k = jax.vmap(opt.update)(grad, _checks.gather(state.opt_state, ids))
    s = jnp.clip(s + step, -bound, bound)
    state = IMTLLState(state.scales.at[ids].set(s), _checks.scatter(state.opt_state, ids, opt_k))
    return weights.astype(losses.dtype), state

  return Weighting(init, update)
