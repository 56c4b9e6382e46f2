"""Known answers for ``dualproj`` (Quinton & Rey 2024)."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import aggregators


@functools.cache
def _jitted(hp):
  agg = aggregators.get("dualproj", **dict(hp))
  return jax.jit(lambda g: agg.update(g, agg.init(None))[0])


def _update(g, **hp):
  """The update in float64; one compile per hyperparameters and shape."""
  return np.asarray(_jitted(tuple(sorted(hp.items())))(jnp.asarray(g, jnp.float32)), np.float64)


def test_conflicting_pair_by_hand():
  # mean = (-1/2, 1/2) conflicts with g1; its projection onto {g1ᵀx ≥ 0} is (0, 1/2),
  # which already satisfies g2ᵀx ≥ 0.
  g = [[1.0, 0.0], [-2.0, 1.0]]
  chex.assert_trees_all_close(_update(g, reg_eps=0.0), np.array([0.0, 0.5]), atol=1e-6)
  chex.assert_trees_all_close(_update(g), np.array([0.0, 0.5]), atol=1e-3)


@pytest.mark.parametrize("t", [2, 4])
def test_no_conflict_with_any_task(t):
  rng = np.random.default_rng(t)
  for _ in range(3):
    g = rng.normal(size=(t, 7)) * rng.uniform(0.2, 5.0, size=(t, 1))
    g[1] = -0.8 * g[0] + 0.3 * g[1]
    out = _update(g)
    # The ridge relaxes Gw ≥ 0 to Gw ≥ -reg_eps·trace(G)·w; w from out = gᵀw (P > T).
    w = np.linalg.lstsq(g.T, out, rcond=None)[0]
    assert np.all(w >= 1.0 / t - 1e-5)
    assert np.all(g @ out >= -1e-4 * np.trace(g @ g.T) * w - 1e-5), g @ out
    assert np.all(g @ _update(g, reg_eps=0.0) >= -1e-5 * np.trace(g @ g.T))
    # The projection never lengthens the mean's component it keeps: ‖out - mean‖ is the
    # distance to the cone, so out is at least as close to the mean as 0 is.
    mean = g.mean(axis=0)
    assert np.linalg.norm(out - mean) <= np.linalg.norm(mean) + 1e-5


def test_non_conflicting_gradients_give_the_mean():
  rng = np.random.default_rng(1)
  g = np.abs(rng.normal(size=(4, 6)))
  chex.assert_trees_all_close(_update(g), g.mean(axis=0), rtol=1e-5)


def test_single_task_identity_and_identical_tasks():
  g = np.array([[0.5, -2.0, 1.0]])
  chex.assert_trees_all_close(_update(g), g[0], rtol=1e-6)
  chex.assert_trees_all_close(_update(np.repeat(g, 3, axis=0)), g[0], rtol=1e-5)
  chex.assert_trees_all_close(_update(np.zeros((3, 2))), np.zeros(2))
