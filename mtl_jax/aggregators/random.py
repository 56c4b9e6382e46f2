"""``random``: random loss weighting on the gradients (Lin et al., TMLR 2022)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mtl_jax.aggregators._base import Aggregator, flatten_tasks, register
from mtl_jax.aggregators._solvers import weighted_rows


class RandomState(NamedTuple):
  key: jax.Array  # raw uint32[2] PRNG key, split on every update without an ``rng``


@register("random")
def random_aggregator(seed: int = 0) -> Aggregator:
  """Random weights on the simplex: update = Σ_i w_i g_i, w = softmax(ε), ε ~ N(0, I).

  Lin, Ye, Xu, Shi & Zhang, "Reasonable Effectiveness of Random Weighting: A Litmus Test
  for Multi-Task Learning", TMLR 2022 (Algorithm 2), as torchjd's ``Random``: a fresh
  draw every update.

  Conventions: mean scale (Σ w = 1, so identical gradients g give g and T = 1 is the
  identity; the ``rlw`` loss weighting is the same draw times K, on the losses). The draw
  uses ``rng`` when ``update`` gets one (the train step passes its per-step key), else a
  key kept in the state and split on every update.

  Args:
    seed: seed of the state's key.

  Returns:
    An aggregator with state :class:`RandomState`; ``update`` takes the extra ``rng``.
  """

  def init(params):
    del params
    return RandomState(key=jax.random.PRNGKey(seed))

  def update(per_task_grads, state, params=None, rng=None, **extra):
    del params, extra
    g_TxP, unflatten = flatten_tasks(per_task_grads)
    key = state.key
    if rng is None:
      key, rng = jax.random.split(key)
    eps_T = jax.random.normal(rng, (g_TxP.shape[0],), jnp.float32)
    w_T = jax.nn.softmax(eps_T)
    return unflatten(weighted_rows(w_T, g_TxP).astype(g_TxP.dtype)), RandomState(key)

  return Aggregator(init, update)
