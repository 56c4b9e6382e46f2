"""Known answers for ``krum`` (Krum and Multi-Krum, Blanchard et al. 2017)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import aggregators
from mtl_jax.aggregators.krum import krum_weights

# A cluster of four points and an outlier. With f = 1 each score sums the distances to the
# T − f − 2 = 2 nearest others: a (0.5, 0.5) → 0.707 + 0.707 = 1.414, c → 0.707 + 1.005,
# d → 0.781 + 1.005, b → 0.707 + 1.1, e (the outlier) → about 26.
_G = [[0.5, 0.5], [1.0, 0.0], [0.0, 1.0], [1.0, 1.1], [10.0, 10.0]]


def _update(g, **hp):
  agg = aggregators.get("krum", **hp)
  return jax.jit(agg.update)(jnp.asarray(g, jnp.float32), agg.init(None), None)[0]


def test_krum_picks_the_most_central_row():
  chex.assert_trees_all_close(_update(_G), jnp.array([0.5, 0.5]), rtol=1e-6)


def test_multi_krum_averages_the_lowest_scores():
  # Scores in order a < c < d < b < e: m = 2 averages a and c, m = 4 drops the outlier.
  chex.assert_trees_all_close(_update(_G, n_selected=2), jnp.array([0.25, 0.75]), rtol=1e-6)
  chex.assert_trees_all_close(_update(_G, n_selected=4), jnp.mean(jnp.array(_G[:4]), 0), rtol=1e-6)


def _reference(g, f, m):
  d = np.linalg.norm(g[:, None] - g[None], axis=-1)
  scores = np.sort(d, axis=1)[:, 1 : len(g) - f - 1].sum(1)
  w = np.zeros(len(g))
  w[np.argsort(scores, kind="stable")[:m]] = 1.0 / m
  return w


def test_weights_match_vector_reference():
  g = np.random.default_rng(0).normal(size=(8, 5))
  g[3] += 20.0  # an outlier
  w = krum_weights(jnp.asarray(g @ g.T, jnp.float32), 2, 3)
  np.testing.assert_allclose(w, _reference(g, 2, 3), atol=1e-7)
  assert w[3] == 0.0


def test_few_tasks_and_bad_hyperparameters():
  # T = 2 < f + 3: no neighbours count, every score is 0 and the first row is taken.
  chex.assert_trees_all_close(_update(_G[:2]), jnp.array(_G[0]), rtol=1e-6)
  with pytest.raises(ValueError, match="n_byzantine must be an int >= 0"):
    aggregators.get("krum", n_byzantine=-1)
  with pytest.raises(ValueError, match="n_selected must be an int >= 1"):
    aggregators.get("krum", n_selected=0)
