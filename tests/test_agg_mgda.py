"""Known answers for ``mgda``, ``mgda_ub`` and the simplex solvers."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import aggregators
from mtl_jax.aggregators._solvers import min_norm_simplex, project_simplex


def _simplex_grid(t, n):
  if t == 2:
    a = np.linspace(0.0, 1.0, n + 1)
    return np.stack([a, 1.0 - a], axis=1)
  a, b = np.meshgrid(np.linspace(0, 1, n + 1), np.linspace(0, 1, n + 1))
  keep = a + b <= 1.0 + 1e-12
  return np.stack([a[keep], b[keep], np.clip(1.0 - a[keep] - b[keep], 0, 1)], axis=1)


@pytest.mark.parametrize("t,n", [(2, 20000), (3, 400)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_min_norm_point_matches_grid(t, n, seed):
  rng = np.random.default_rng(seed)
  g = rng.normal(size=(t, 4))
  if seed == 1:
    g[1] = -0.5 * g[0] + 0.1 * rng.normal(size=4)  # strong conflict
  agg = aggregators.get("mgda")
  d, _ = jax.jit(agg.update)(jnp.asarray(g, jnp.float32), agg.init(None), None)
  points = _simplex_grid(t, n) @ g
  norms = np.linalg.norm(points, axis=1)
  best = points[np.argmin(norms)]
  assert np.linalg.norm(d) <= norms.min() + 1e-4
  np.testing.assert_allclose(d, best, atol=5e-3)


def test_scale_sum_multiplies_by_t():
  g = jnp.asarray(np.random.default_rng(0).normal(size=(3, 5)), jnp.float32)
  mean_agg = aggregators.get("mgda")
  sum_agg = aggregators.get("mgda", scale="sum")
  d_mean, _ = jax.jit(mean_agg.update)(g, mean_agg.init(None), None)
  d_sum, _ = jax.jit(sum_agg.update)(g, sum_agg.init(None), None)
  chex.assert_trees_all_close(d_sum, 3.0 * d_mean, rtol=1e-5, atol=1e-6)


def test_pareto_stationary_gives_zero():
  g = jnp.array([[1.0, 2.0], [-2.0, -4.0]])
  agg = aggregators.get("mgda")
  d, _ = jax.jit(agg.update)(g, agg.init(None), None)
  chex.assert_trees_all_close(d, jnp.zeros(2), atol=1e-6)


def test_mgda_ub_solves_on_representation_grads():
  rng = np.random.default_rng(4)
  g = jnp.asarray(rng.normal(size=(3, 6)), jnp.float32)
  z = jnp.asarray(rng.normal(size=(3, 2, 4)), jnp.float32)  # [T, B, D]
  agg = aggregators.get("mgda_ub")
  d, _ = jax.jit(agg.update)(g, agg.init(None), None, rep_grads=z)
  z_TxD = z.reshape(3, -1)
  alpha = min_norm_simplex(z_TxD @ z_TxD.T)
  chex.assert_trees_all_close(d, alpha @ g, rtol=1e-5, atol=1e-6)
  # Without rep_grads it is MGDA.
  d_ub, _ = jax.jit(agg.update)(g, agg.init(None), None)
  mgda = aggregators.get("mgda")
  d_mgda, _ = jax.jit(mgda.update)(g, mgda.init(None), None)
  chex.assert_trees_all_close(d_ub, d_mgda, rtol=1e-6)


def test_min_norm_simplex_corner_and_identical():
  # One gradient inside the hull's "shadow": the min-norm point is a vertex.
  gram = jnp.array([[1.0, 1.0], [1.0, 4.0]])  # g1=(1,0), g2=(1,√3): α=(1,0)
  chex.assert_trees_all_close(min_norm_simplex(gram), jnp.array([1.0, 0.0]), atol=1e-6)
  alpha = min_norm_simplex(jnp.ones((4, 4)))
  chex.assert_trees_all_close(jnp.sum(alpha), 1.0, atol=1e-6)


def test_project_simplex_known_answers():
  chex.assert_trees_all_close(
    project_simplex(jnp.array([0.5, 0.2, 2.0])), jnp.array([0.0, 0.0, 1.0])
  )
  chex.assert_trees_all_close(
    project_simplex(jnp.array([0.2, 0.3, 0.5])), jnp.array([0.2, 0.3, 0.5]), atol=1e-7
  )
  chex.assert_trees_all_close(
    project_simplex(jnp.array([1.0, 1.0, -5.0])), jnp.array([0.5, 0.5, 0.0])
  )


def test_project_simplex_is_closest_simplex_point():
  rng = np.random.default_rng(0)
  grid = _simplex_grid(3, 200)
  for v in rng.normal(size=(5, 3)) * 2:
    w = np.asarray(jax.jit(project_simplex)(jnp.asarray(v, jnp.float32)))
    assert abs(w.sum() - 1.0) < 1e-6 and (w >= 0).all()
    assert np.linalg.norm(w - v) <= np.linalg.norm(grid - v, axis=1).min() + 1e-5
  for t in itertools.chain([1, 2, 7]):
    w = project_simplex(jnp.zeros(t))
    chex.assert_trees_all_close(w, jnp.full(t, 1.0 / t))
