"""``pcgrad``: projecting conflicting gradients (Yu et al., NeurIPS 2020)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mtl_jax.aggregators._base import Aggregator, flatten_tasks, register
from mtl_jax.aggregators._solvers import task_gramian, weighted_rows


class PCGradState(NamedTuple):
  key: jax.Array  # raw uint32[2] PRNG key, split on every update


def pcgrad_weights(gram_TxT: jax.Array, others_TxTm1: jax.Array) -> jax.Array:
  """Per-task weights w with ``update = Σ_k w_k g_k`` for PCGrad.

  Every projected gradient stays in the span of the task gradients, g_i' = Σ_k β_ik g_k,
  so the surgery runs on the T×T Gramian instead of on P-vectors.

  Args:
    gram_TxT: ``g gᵀ``.
    others_TxTm1: row i is the order in which task i is projected against the others.

  Returns:
    ``w_T = Σ_i β_i``.
  """
  t = gram_TxT.shape[0]
  sq_T = jnp.diagonal(gram_TxT)

  def surgery(i, order):
    def step(beta_T, j):
      dot = beta_T @ gram_TxT[:, j]  # g_i' · g_j, against the ORIGINAL g_j
      coef = jnp.where(dot < 0, dot / jnp.where(sq_T[j] > 0, sq_T[j], 1.0), 0.0)
      return beta_T - coef * jax.nn.one_hot(j, t, dtype=beta_T.dtype), None

    beta_T, _ = jax.lax.scan(step, jax.nn.one_hot(i, t, dtype=gram_TxT.dtype), order)
    return beta_T

  return jnp.sum(jax.vmap(surgery)(jnp.arange(t), others_TxTm1), axis=0)


def random_orders(key: jax.Array, t: int) -> jax.Array:
  """Row i: a random permutation of ``{0..T-1} \\ {i}``, shape ``[T, T-1]``."""
  perms = jax.vmap(lambda k: jax.random.permutation(k, t - 1))(jax.random.split(key, t))
  rows = jnp.arange(t)[:, None]
  return perms + (perms >= rows)  # skip over i itself


@register("pcgrad")
def pcgrad(seed: int = 0) -> Aggregator:
  """PCGrad: Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020.

  For each task i, in a random order of the other tasks j, when g_i'·g_j < 0 the running
  g_i' is projected onto the normal plane of the original g_j:
  g_i' ← g_i' − (g_i'·g_j / ‖g_j‖²) g_j. The update is Σ_i g_i' (sum scale, as in the
  paper's Algorithm 1), so non-conflicting gradients pass through as their sum and T = 1
  is the identity. A zero g_j never triggers a projection (its dot product is 0).

  Dot products come from the Gramian (float32, HIGHEST precision); no eps. Each task
  draws its own order from a PRNG key kept in the state (split on every update).

  Args:
    seed: seeds the key held in the state.

  Extra keyword to ``update``:
    rng: a PRNG key that, when given, draws the orders instead of the state's key (the
      state's key still advances).

  Returns:
    An aggregator with state ``PCGradState(key)``.
  """

  def init(params):
    del params
    return PCGradState(key=jax.random.PRNGKey(seed))

  def update(per_task_grads, state, params=None, *, rng=None, **extra):
    del params, extra
    g_TxP, unflatten = flatten_tasks(per_task_grads)
    t = g_TxP.shape[0]
    next_key, key = jax.random.split(state.key)
    if rng is not None:
      key = rng
    gram_TxT = task_gramian(g_TxP)
    w_T = pcgrad_weights(gram_TxT, random_orders(key, t))
    return unflatten(weighted_rows(w_T, g_TxP)), PCGradState(key=next_key)

  return Aggregator(init, update)
