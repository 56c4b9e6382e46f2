"""``dwa``: Dynamic Weight Average (Liu, Johns & Davison, 2019)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mtl_jax.weighting import _checks
from mtl_jax.weighting._base import Weighting, register, resolve_ids

_TINY = 1e-12  # guards a recorded loss of 0 against division by zero


class DWAState(NamedTuple):
  """The last two recorded (optionally smoothed) losses per task, every field sized T."""

  last: jax.Array  # L_i(t−1), float32
  before_last: jax.Array  # L_i(t−2), float32
  count: jax.Array  # int32, how many losses of task i are recorded (capped at 2)


@register("dwa")
def dwa(temperature: float = 2.0, ema: float = 0.0) -> Weighting:
  """Weights tasks by how slowly their loss is falling: w = K·softmax(r/τ).

  Liu, Johns & Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019, eq. 1:
  r_i = L_i(t−1) / L_i(t−2), w_i = K exp(r_i/τ) / Σ_j exp(r_j/τ), the softmax taken over
  the K sampled tasks, so the sampled weights sum to K (T when all tasks are sampled).

  The paper's t counts epochs and L_i(t) is the epoch's average loss. Here t counts calls
  to ``update`` (training steps) by default; with ``ema`` = β > 0 each recorded loss is an
  exponential moving average m_i ← β m_i + (1 − β) L_i (m_i = L_i the first time), which
  plays the role of the epoch average against per-step noise. A task's r_i is taken as 1
  until two of its losses are recorded, so the first two steps give weight 1 (as the paper's
  w(1) = w(2) = 1) and a task first sampled late joins neutrally. T = 1 always gives 1.

  Args:
    temperature: τ > 0; larger is closer to equal weights (the paper's 2).
    ema: β in [0, 1); 0 records the raw loss of each step.

  Returns:
    A ``Weighting`` whose state is a ``DWAState``.
  """
  tau = _checks.number("dwa", "temperature", temperature, low=0, strict_low=True)
  beta = _checks.number("dwa", "ema", ema, low=0)
  if beta >= 1:
    raise ValueError(f"dwa: ema must be a finite number in [0, 1), got {ema!r}")

  def init(num_tasks):
    t = _checks.num_tasks("dwa", num_tasks)
    zeros = jnp.zeros((t,), jnp.float32)
    return DWAState(last=zeros, before_last=zeros, count=jnp.zeros((t,), jnp.int32))

  def update(losses, state, task_ids=None, **extra):
    del extra
    ids = resolve_ids(losses, task_ids)
    last, before, count = state.last[ids], state.before_last[ids], state.count[ids]
    r = jnp.where(count >= 2, last / jnp.maximum(before, _TINY), 1.0)
    weights = losses.shape[0] * jax.nn.softmax(r / tau)

    loss = jax.lax.stop_gradient(losses).astype(jnp.float32)
    record = jnp.where(count >= 1, beta * last + (1.0 - beta) * loss, loss)
    state = DWAState(
      last=state.last.at[ids].set(record),
      before_last=state.before_last.at[ids].set(last),
      count=state.count.at[ids].set(jnp.minimum(count + 1, 2)),
    )
    return weights.astype(losses.dtype), state

  return Weighting(init, update)
