"""Known answers for ``imtl_g``."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import aggregators
from mtl_jax.aggregators.imtl_g import imtl_g_weights


def _update(g):
  agg = aggregators.get("imtl_g")
  return jax.jit(agg.update)(g, agg.init(None), None)[0]


@pytest.mark.parametrize("t", [2, 3, 5])
def test_equal_projections_and_weights_sum_to_one(t):
  g = jnp.asarray(
    np.random.default_rng(t).normal(size=(t, 12)) * np.arange(1, t + 1)[:, None], jnp.float32
  )
  alpha = jax.jit(imtl_g_weights)(g @ g.T)
  chex.assert_trees_all_close(jnp.sum(alpha), 1.0, atol=1e-5)
  d = _update(g)
  chex.assert_trees_all_close(d, alpha @ g, rtol=1e-5, atol=1e-5)
  proj = (g / jnp.linalg.norm(g, axis=1, keepdims=True)) @ d
  chex.assert_trees_all_close(proj, jnp.full(t, proj[0]), rtol=1e-4, atol=1e-5)


def test_hand_computed_two_tasks():
  # d = α g1 + (1-α) g2 = (α, 2(1-α)); equal projections on (1,0), (0,1): α = 2/3.
  chex.assert_trees_all_close(
    _update(jnp.array([[1.0, 0.0], [0.0, 2.0]])), jnp.array([2.0 / 3.0, 2.0 / 3.0]), rtol=1e-6
  )


def test_anti_parallel_gives_zero_and_identical_gives_the_gradient():
  chex.assert_trees_all_close(
    _update(jnp.array([[1.0, 2.0], [-3.0, -6.0]])), jnp.zeros(2), atol=1e-5
  )
  chex.assert_trees_all_close(
    _update(jnp.array([[1.0, 2.0]] * 3)), jnp.array([1.0, 2.0]), rtol=1e-6
  )
