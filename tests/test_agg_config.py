"""Known answers for ``config`` (ConFIG, Liu et al. 2024)."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import aggregators


@functools.cache
def _jitted(hp):
  agg = aggregators.get("config", **dict(hp))
  return jax.jit(lambda g: agg.update(g, agg.init(None))[0])


def _update(g, **hp):
  """The update in float64; one compile per hyperparameters and shape."""
  return np.asarray(_jitted(tuple(sorted(hp.items())))(jnp.asarray(g, jnp.float32)), np.float64)


def test_two_orthogonal_gradients_by_hand():
  # u = e1, e2, so d = (1, 1); the length is (g1 + g2)ᵀ d̂ = 3/√2, giving 3/2 · (1, 1).
  chex.assert_trees_all_close(_update([[2.0, 0.0], [0.0, 1.0]]), np.array([1.5, 1.5]), atol=1e-6)


def test_conflicting_pair_by_hand():
  # u1 = (1, 0), u2 = (-1, 1)/√2: u1ᵀd = u2ᵀd = 1 gives d = (1, 1 + √2).
  g = np.array([[1.0, 0.0], [-1.0, 1.0]])
  d = np.array([1.0, 1.0 + np.sqrt(2.0)])
  d_hat = d / np.linalg.norm(d)
  chex.assert_trees_all_close(_update(g), (g @ d_hat).sum() * d_hat, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("t", [2, 3, 5])
def test_equal_projection_on_every_unit_gradient(t):
  rng = np.random.default_rng(t)
  g = rng.normal(size=(t, 8)) * rng.uniform(0.1, 10.0, size=(t, 1))
  out = _update(g)
  u = g / np.linalg.norm(g, axis=1, keepdims=True)
  proj = u @ out
  np.testing.assert_allclose(proj, np.full(t, proj.mean()), rtol=1e-4)
  assert proj.mean() > 0
  # Same as the float64 pseudo-inverse of the T×P unit matrix.
  d = np.linalg.pinv(u) @ np.ones(t)
  d_hat = d / np.linalg.norm(d)
  np.testing.assert_allclose(out, (g @ d_hat).sum() * d_hat, rtol=1e-4, atol=1e-5)


def test_single_task_identity_and_identical_tasks_sum():
  g = np.array([[0.3, -1.2, 2.0]])
  chex.assert_trees_all_close(_update(g), g[0], rtol=1e-6)
  chex.assert_trees_all_close(_update(np.repeat(g, 4, axis=0)), 4 * g[0], rtol=1e-5)


def test_zero_row_drops_out():
  g = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
  out = _update(g)
  chex.assert_tree_all_finite(out)
  chex.assert_trees_all_close(out, np.array([1.5, 1.5, 0.0]), atol=1e-6)
  chex.assert_trees_all_close(_update(np.zeros((3, 4))), np.zeros(4))
