"""Known answers for ``random`` (random weighting, Lin et al. 2022)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from mtl_jax import aggregators


def test_weights_are_softmax_of_a_normal_draw_from_rng():
  g = jnp.asarray(np.random.default_rng(0).normal(size=(4, 6)), jnp.float32)
  agg = aggregators.get("random")
  key = jax.random.PRNGKey(7)
  state = agg.init(None)
  d, new_state = jax.jit(agg.update)(g, state, None, rng=key)
  w = jax.nn.softmax(jax.random.normal(key, (4,), jnp.float32))
  chex.assert_trees_all_close(d, w @ g, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(new_state.key, state.key)  # an explicit rng leaves it


def test_state_key_draws_fresh_weights_each_step():
  g = jnp.eye(3, dtype=jnp.float32)  # the update is the weight vector itself
  agg = aggregators.get("random", seed=1)
  update = jax.jit(agg.update)
  state = agg.init(None)
  d1, state = update(g, state, None)
  d2, state = update(g, state, None)
  for d in (d1, d2):
    assert np.all(np.asarray(d) > 0)
    np.testing.assert_allclose(jnp.sum(d), 1.0, rtol=1e-6)
  assert not np.allclose(d1, d2)
  _, first = jax.random.split(jax.random.PRNGKey(1))
  chex.assert_trees_all_close(d1, jax.nn.softmax(jax.random.normal(first, (3,))), rtol=1e-6)
