"""``group_dro``: worst-case task weighting by exponentiated gradient (Sagawa et al., 2020)."""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mtl_jax.weighting import _checks
from mtl_jax.weighting._base import Weighting, register, resolve_ids


class GroupDROState(NamedTuple):
  """log q, the adversary's distribution over the T tasks (logsumexp(log_q) = 0)."""

  log_q: jax.Array  # [T] float32


@register("group_dro")
def group_dro(step_size: float = 0.01) -> Weighting:
  """Online min_θ max_i L_i: the adversary's weights q follow exponentiated gradient.

  Sagawa, Koh, Hashimoto & Liang, "Distributionally Robust Neural Networks for Group
  Shifts", ICLR 2020, Algorithm 1, with tasks as the groups: q_i ← q_i exp(η L_i) for each
  sampled task, then q ← q / Σ_j q_j over all T tasks; the model step uses the updated q.
  Kept in log space, so large η L cannot overflow. A task sampled twice in one batch gets
  both multiplicative steps.

  Conventions: returns T·q_i for the sampled tasks, from *after* this step's update (as in
  Algorithm 1), so weights start at 1, sum to T over all T tasks (a K < T batch's weights
  need not sum to K) and T = 1 always gives 1. As η → ∞ all the weight goes to the task with
  the largest loss, η = 0 gives ``equal``.

  Args:
    step_size: η ≥ 0, the adversary's step (the paper's η_q; 0.01 by default).

  Returns:
    A ``Weighting`` whose state is a ``GroupDROState``.
  """
  eta = _checks.number("group_dro", "step_size", step_size, low=0)

  def init(num_tasks):
    t = _checks.num_tasks("group_dro", num_tasks)
    return GroupDROState(jnp.full((t,), -math.log(t), jnp.float32))

  def update(losses, state, task_ids=None, **extra):
    del extra
    ids = resolve_ids(losses, task_ids)
    loss = jax.lax.stop_gradient(losses).astype(jnp.float32)
    log_q = state.log_q.at[ids].add(eta * loss)
    log_q = log_q - jax.nn.logsumexp(log_q)
    weights = log_q.shape[0] * jnp.exp(log_q[ids])
    return weights.astype(losses.dtype), GroupDROState(log_q)

  return Weighting(init, update)
