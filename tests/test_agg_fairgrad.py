"""Known answers for ``fairgrad``."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import aggregators
from mtl_jax.aggregators.fairgrad import fairgrad_solve


def _update(g, **hp):
  agg = aggregators.get("fairgrad", **hp)
  d, _ = jax.jit(agg.update)(g, agg.init(None), None)
  return d


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 5.0])
def test_orthogonal_gradients_closed_form(alpha):
  # G Gᵀ = diag(n²): n_i² w_i = w_i^{-1/α} gives w_i = n_i^{-2α/(1+α)}.
  norms = jnp.array([2.0, 0.5, 1.0, 3.0])
  g = jnp.diag(norms)
  w = norms ** (-2 * alpha / (1 + alpha))
  chex.assert_trees_all_close(_update(g, alpha=alpha, eps=1e-9), w * norms, rtol=1e-5)


def test_alpha_one_equal_norm_orthogonal():
  # α = 1, ‖g_i‖ = 2: w_i = 1/2, update = Σ g_i / 2.
  g = 2.0 * jnp.eye(3, 5)
  chex.assert_trees_all_close(_update(g, eps=1e-9), jnp.array([1.0, 1.0, 1.0, 0, 0]), rtol=1e-5)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 3.0])
def test_two_tasks_non_orthogonal_residual(alpha):
  g = jnp.array([[1.0, 0.0], [0.6, 0.8]]) * jnp.array([[1.0], [4.0]])  # cos = 0.6
  gram = g @ g.T
  w = fairgrad_solve(gram, alpha, eps=1e-9)
  assert bool(jnp.all(w > 0))
  np.testing.assert_allclose(gram @ w, w ** (-1 / alpha), rtol=1e-5)
  # Every task's rate of decrease g_iᵀd is w_i^{-1/α}.
  d = _update(g, alpha=alpha, eps=1e-9)
  np.testing.assert_allclose(g @ d, w ** (-1 / alpha), rtol=1e-5)


def test_random_gradients_of_mixed_scale_solve_the_equation():
  rng = np.random.default_rng(0)
  g = jnp.asarray(rng.normal(size=(6, 20)) * np.array([[1], [10], [0.1], [1], [3], [0.3]]))
  gram = (g @ g.T).astype(jnp.float32)
  for alpha in [0.5, 2.0]:
    w = fairgrad_solve(gram, alpha, eps=1e-9)
    # float32: the residual is small relative to the terms of each row of G w.
    scale = jnp.abs(gram) @ w
    assert bool(jnp.all(jnp.abs(gram @ w - w ** (-1 / alpha)) < 1e-4 * scale))


def test_anti_parallel_gradients_stay_finite():
  g = jnp.array([[1.0, 2.0], [-1.0, -2.0]])
  chex.assert_tree_all_finite(_update(g))


def test_rejects_bad_hyperparameters():
  with pytest.raises(ValueError, match="alpha"):
    aggregators.get("fairgrad", alpha=0.0)
  with pytest.raises(ValueError, match="eps"):
    aggregators.get("fairgrad", eps=0.0)
