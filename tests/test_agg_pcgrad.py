"""Known answers for ``pcgrad``."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from mtl_jax import aggregators
from mtl_jax.aggregators.pcgrad import random_orders


def _reference(g_TxP, orders_TxTm1):
  """Algorithm 1 of Yu et al. (2020), literally, on P-vectors in float64."""
  g = np.asarray(g_TxP, np.float64)
  out = []
  for i, order in enumerate(np.asarray(orders_TxTm1)):
    gi = g[i].copy()
    for j in order:
      dot = gi @ g[j]
      if dot < 0:
        gi -= dot / (g[j] @ g[j]) * g[j]
    out.append(gi)
  return np.sum(out, axis=0)


def _update(g, rng=None, seed=0):
  agg = aggregators.get("pcgrad", seed=seed)
  extra = {} if rng is None else {"rng": rng}
  return jax.jit(agg.update)(g, agg.init(None), None, **extra)


def test_hand_computed_two_tasks():
  # g1·g2 = -1 < 0. g1' = g1 + ½ g2 = (½, ½); g2' = g2 + g1 = (0, 1). With T = 2 each task
  # has one "other", so the order is irrelevant and the answer deterministic.
  g = jnp.array([[1.0, 0.0], [-1.0, 1.0]])
  for seed in range(3):
    d, _ = _update(g, seed=seed)
    chex.assert_trees_all_close(d, jnp.array([0.5, 1.5]), atol=1e-6)


def test_non_conflicting_gradients_are_summed():
  g = jnp.abs(jnp.asarray(np.random.default_rng(0).normal(size=(4, 6)), jnp.float32))
  d, _ = _update(g)
  chex.assert_trees_all_close(d, jnp.sum(g, axis=0), rtol=1e-6)


def test_matches_literal_algorithm_for_every_order():
  g = jnp.array([[1.0, 0.2, 0.0], [-0.8, 1.0, 0.1], [-0.3, -1.0, 0.5]])
  agg = aggregators.get("pcgrad")
  update = jax.jit(agg.update)
  results = set()
  for k in range(12):
    rng = jax.random.PRNGKey(k)
    d, _ = update(g, agg.init(None), None, rng=rng)
    expected = _reference(g, random_orders(rng, 3))
    chex.assert_trees_all_close(d, expected.astype(np.float32), rtol=1e-5, atol=1e-6)
    results.add(tuple(np.round(np.asarray(d), 4)))
  assert len(results) > 1, "the order should matter for this conflicting triple"


def test_orders_skip_self_and_are_permutations():
  orders = np.asarray(random_orders(jax.random.PRNGKey(1), 5))
  chex.assert_shape(orders, (5, 4))
  for i, row in enumerate(orders):
    assert sorted(row.tolist()) == [j for j in range(5) if j != i]


def test_state_key_advances_and_rng_overrides():
  agg = aggregators.get("pcgrad")
  g = jnp.asarray(np.random.default_rng(2).normal(size=(4, 3)), jnp.float32)
  state = agg.init(None)
  _, state2 = jax.jit(agg.update)(g, state, None)
  assert not np.array_equal(state.key, state2.key)
  rng = jax.random.PRNGKey(7)
  update = jax.jit(agg.update)
  d1, _ = update(g, state, None, rng=rng)
  d2, _ = update(g, state2, None, rng=rng)
  chex.assert_trees_all_equal(d1, d2)
