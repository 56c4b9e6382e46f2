"""Known answers for ``trimmed_mean`` (coordinate-wise trimmed mean, Yin et al. 2018)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import aggregators


def _update(g, **hp):
  agg = aggregators.get("trimmed_mean", **hp)
  return jax.jit(agg.update)(jnp.asarray(g, jnp.float32), agg.init(None), None)[0]


def test_hand_computed_five_tasks():
  g = [[1.0, 10.0], [2.0, -5.0], [100.0, 0.0], [3.0, 1.0], [-50.0, 2.0]]
  # Column 0 sorted: -50, 1, 2, 3, 100 → mean(1, 2, 3) = 2; column 1: mean(0, 1, 2) = 1.
  chex.assert_trees_all_close(_update(g), jnp.array([2.0, 1.0]), rtol=1e-6)
  # trim 2 leaves the coordinate-wise median; trim 0 is the mean.
  chex.assert_trees_all_close(_update(g, trim_number=2), jnp.array([2.0, 1.0]), rtol=1e-6)
  chex.assert_trees_all_close(_update(g, trim_number=0), jnp.mean(jnp.array(g), 0), rtol=1e-6)


def test_matches_numpy_reference_and_clamps_for_few_tasks():
  g = np.random.default_rng(0).normal(size=(7, 9))
  expected = np.sort(g, axis=0)[2:5].mean(0)
  np.testing.assert_allclose(_update(g, trim_number=2), expected, rtol=1e-5, atol=1e-6)
  # T = 2 < 2·1 + 1: the trim is clamped to 0 (the mean) instead of raising.
  chex.assert_trees_all_close(_update(g[:2]), jnp.asarray(g[:2].mean(0), jnp.float32), rtol=1e-5)
  with pytest.raises(ValueError, match="trim_number must be an int >= 0"):
    aggregators.get("trimmed_mean", trim_number=-1)


def test_extremes_path_equals_the_sort_with_ties():
  # k ≤ 4 trims by subtracting maxima/minima; ties must be removed once each, as a sort does.
  rng = np.random.default_rng(1)
  g = rng.integers(-2, 3, size=(12, 40)).astype(np.float32)  # many equal values per column
  for k in (1, 3, 4, 5):  # 5 takes the sort path
    expected = np.sort(g, axis=0)[k : 12 - k].mean(0)
    np.testing.assert_allclose(_update(g, trim_number=k), expected, rtol=1e-6, atol=1e-6)
