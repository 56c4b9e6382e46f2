"""``db_mtl``: Dual-Balancing Multi-Task Learning (Lin et al., 2023)."""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mtl_jax.aggregators._base import Aggregator, flatten_tasks, register, task_rows
from mtl_jax.aggregators._solvers import weighted_rows


class DBMTLState(NamedTuple):
  """Per task id, every field with a leading ``max_tasks`` axis."""

  buffer: jax.Array  # [max_tasks, P] EMA ĝ_i of the log-loss gradients, float32 or wider
  count: jax.Array  # [max_tasks] int32: how many times task i was aggregated


def _size(params) -> tuple[int, jnp.dtype]:
  """(P, dtype) of the buffers; no params (nothing shared, never aggregated) gives P = 0."""
  leaves = jax.tree.leaves(params)
  if not leaves:
    return 0, jnp.dtype(jnp.float32)
  dtype = jnp.promote_types(jnp.result_type(*leaves), jnp.float32)
  return sum(math.prod(jnp.shape(l)) for l in leaves), dtype


def ema_log_grads(buffer_KxP, count_K, g_KxP, losses_K, beta, beta_sigma, eps):
  """LibMTL's buffer step: ĝ ← h + (β / t^σ)(ĝ − h) with h = g / (L + eps), t the new count."""
  h = g_KxP.astype(buffer_KxP.dtype) / (losses_K.astype(buffer_KxP.dtype)[:, None] + eps)
  t = (count_K + 1).astype(buffer_KxP.dtype)
  rate = beta / t**beta_sigma
  return h + rate[:, None] * (buffer_KxP - h)


def balance_to_max_norm(buffer_KxP, eps):
  """Σ_i (max_j ‖ĝ_j‖ / (‖ĝ_i‖ + eps)) ĝ_i: every EMA gradient rescaled to the largest norm."""
  norm_K = jnp.linalg.norm(buffer_KxP, axis=1)
  return weighted_rows(jnp.max(norm_K) / (norm_K + eps), buffer_KxP)


@register("db_mtl")
def db_mtl(
  beta: float = 0.9, beta_sigma: float = 0.0, eps: float = 1e-8, max_tasks: int = 64
) -> Aggregator:
  """DB-MTL: Lin, Ye, Xu, Shi & Zhang, "Dual-Balancing for Multi-Task Learning", 2023
  (arXiv:2308.12029), as LibMTL's ``DB_MTL`` (the authors' implementation).

  Loss-scale balancing: task i contributes the gradient of log(L_i + eps), h_i = g_i /
  (L_i + eps). Gradient-magnitude balancing: an EMA ĝ_i ← h_i + β_t(ĝ_i − h_i) per task
  (β_t = β / t^σ with t the number of times task i was aggregated, LibMTL's
  ``DB_beta`` / ``DB_beta_sigma``; σ = 0, the LibMTL default, is a plain EMA), then
  update = Σ_i (max_j ‖ĝ_j‖ / (‖ĝ_i‖ + eps)) ĝ_i.

  Conventions and differences:
    * No bias correction: like LibMTL the buffers start at 0, so the first step gives
      (1 − β) h_i (T = 1 on a fresh state returns 0.1·g for the default β = 0.9, with L = 1).
      ``beta_sigma`` is not a bias correction but a decay of the EMA rate (σ > 0: β_t → 0,
      the EMA forgets faster over time).
    * Sum scale: the K rescaled EMA gradients are summed (as LibMTL).
    * State per task id (``max_tasks``, filled with T by the train step): an EMA buffer of
      size P per task, i.e. ``max_tasks × P`` floats (LibMTL keeps T × P too), read and
      written at ``task_ids``; with K < T each buffer advances only when its task is
      sampled, and the max norm is over the K sampled buffers.
    * Extras: ``losses`` and ``task_ids``. Without ``losses`` every loss is taken as 1
      (an EMA of the raw gradients, still rescaled to the largest norm).
    * Heads get their unweighted gradients on the train path (LibMTL replaces only the
      shared gradient too).

  Args:
    beta: EMA rate β in [0, 1).
    beta_sigma: σ ≥ 0, decay exponent of the EMA rate.
    eps: added to the losses and to the norms (> 0).
    max_tasks: number of task ids the state holds.

  Returns:
    An aggregator with state :class:`DBMTLState`; ``init`` sizes the buffers from the shared
    parameters (P = 0 when nothing is shared).
  """
  if not 0.0 <= beta < 1.0:
    raise ValueError(f"db_mtl beta must be in [0, 1), got {beta}")
  if not beta_sigma >= 0.0:
    raise ValueError(f"db_mtl beta_sigma must be >= 0, got {beta_sigma}")
  if not eps > 0.0:
    raise ValueError(f"db_mtl eps must be > 0, got {eps}")

  def init(params):
    p, dtype = _size(params)
    return DBMTLState(
      buffer=jnp.zeros((max_tasks, p), dtype), count=jnp.zeros((max_tasks,), jnp.int32)
    )

  def update(per_task_grads, state, params=None, losses=None, task_ids=None, **extra):
    del params, extra
    g_KxP, unflatten = flatten_tasks(per_task_grads)
    k = g_KxP.shape[0]
    ids = task_rows("db_mtl", k, task_ids, max_tasks)
    loss_K = jnp.ones((k,)) if losses is None else jax.lax.stop_gradient(jnp.asarray(losses))
    count = state.count[ids]
    buf = ema_log_grads(state.buffer[ids], count, g_KxP, loss_K, beta, beta_sigma, eps)
    d_P = balance_to_max_norm(buf, eps).astype(g_KxP.dtype)
    state = DBMTLState(state.buffer.at[ids].set(buf), state.count.at[ids].set(count + 1))
    return unflatten(d_P), state

  return Aggregator(init, update)
