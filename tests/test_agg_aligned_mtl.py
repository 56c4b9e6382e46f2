"""Known answers for ``aligned_mtl`` (Senushkin et al. 2023)."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import aggregators
from mtl_jax.aggregators._solvers import task_gramian
from mtl_jax.aggregators.aligned_mtl import balance_transform


@functools.cache
def _jitted(hp):
  agg = aggregators.get("aligned_mtl", **dict(hp))
  return jax.jit(lambda g: agg.update(g, agg.init(None))[0])


def _update(g, **hp):
  """The update in float64; one compile per hyperparameters and shape."""
  return np.asarray(_jitted(tuple(sorted(hp.items())))(jnp.asarray(g, jnp.float32)), np.float64)


def _reference(g, tol=1e-9):
  """Algorithm 1 in float64 numpy, with an SVD instead of the Gramian's eigh."""
  u, s, vt = np.linalg.svd(g, full_matrices=False)
  keep = s > tol * s.max()
  # B g = σ_min · V Λ^{-1/2} Vᵀ g = σ_min · (left singular vectors) · (right ones)ᵀ.
  aligned = s[keep].min() * (u[:, keep] @ vt[keep])
  return aligned.sum(axis=0)


def test_orthogonal_gradients_by_hand():
  # G = diag(9, 1): σ_min = 1 and B = diag(1/3, 1), so both aligned gradients are unit.
  g = [[3.0, 0.0], [0.0, 1.0]]
  chex.assert_trees_all_close(_update(g), np.array([1.0, 1.0]), atol=1e-6)
  chex.assert_trees_all_close(_update(g, reduction="mean"), np.array([0.5, 0.5]), atol=1e-6)


def test_opposite_gradients_rank_one_by_hand():
  # Rank 1: B = v vᵀ with v ∝ (2, -1); the update is (‖g1‖ - ‖g2‖) times the unit direction.
  chex.assert_trees_all_close(_update([[2.0, 0.0], [-1.0, 0.0]]), np.array([1.0, 0.0]), atol=1e-6)


@pytest.mark.parametrize("t", [2, 4])
def test_aligned_gradients_orthogonal_with_norm_sigma_min(t):
  rng = np.random.default_rng(t)
  g = rng.normal(size=(t, 9)) * rng.uniform(0.1, 5.0, size=(t, 1))
  b = np.asarray(balance_transform(task_gramian(jnp.asarray(g, jnp.float32))), np.float64)
  aligned = b @ g
  sigma_min = np.linalg.svd(g, compute_uv=False).min()
  np.testing.assert_allclose(
    aligned @ aligned.T, sigma_min**2 * np.eye(t), atol=2e-4 * sigma_min**2
  )
  np.testing.assert_allclose(_update(g), _reference(g), rtol=2e-4, atol=2e-5)


def test_rank_deficient_and_zero_rows():
  rng = np.random.default_rng(0)
  a, c = rng.normal(size=(2, 6))
  g = np.stack([a, 2.0 * a, np.zeros(6), c])  # rank 2
  out = _update(g)
  chex.assert_tree_all_finite(out)
  np.testing.assert_allclose(out, _reference(g, tol=1e-5), rtol=1e-3, atol=1e-4)
  chex.assert_trees_all_close(_update(np.zeros((3, 4))), np.zeros(4))


def test_single_task_identity_and_identical_tasks():
  g = np.array([[0.5, -2.0, 1.0]])
  chex.assert_trees_all_close(_update(g), g[0], rtol=1e-5)
  chex.assert_trees_all_close(_update(np.repeat(g, 3, axis=0)), 3 * g[0], rtol=1e-5)
  chex.assert_trees_all_close(_update(np.repeat(g, 3, axis=0), reduction="mean"), g[0], rtol=1e-5)
