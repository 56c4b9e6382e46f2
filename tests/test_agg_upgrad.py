"""Known answers for ``upgrad`` (Quinton & Rey 2024) and its dual-cone QP solver."""

import functools
import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import aggregators
from mtl_jax.aggregators._solvers import project_weights_dual_cone


@functools.cache
def _jitted(hp):
  agg = aggregators.get("upgrad", **dict(hp))
  return jax.jit(lambda g: agg.update(g, agg.init(None))[0])


def _update(g, **hp):
  """The update in float64; one compile per hyperparameters and shape."""
  return np.asarray(_jitted(tuple(sorted(hp.items())))(jnp.asarray(g, jnp.float32)), np.float64)


def _conflicting(t, seed, p=7):
  rng = np.random.default_rng(seed)
  g = rng.normal(size=(t, p)) * rng.uniform(0.2, 5.0, size=(t, 1))
  g[1] = -0.8 * g[0] + 0.3 * g[1]  # at least one strongly conflicting pair
  return g


def _brute_force_projection(u, gram):
  """min_{v ≥ u} vᵀGv in float64 by enumerating which bounds are active."""
  t = len(u)
  for free in itertools.product([False, True], repeat=t):
    free = np.array(free)
    v = u.copy()
    if free.any():
      # Free coordinates make the gradient (G v) vanish there.
      fixed = ~free
      v[free] = np.linalg.solve(gram[np.ix_(free, free)], -gram[np.ix_(free, fixed)] @ u[fixed])
    lam = gram @ v
    if np.all(v >= u - 1e-12) and np.all(lam[~free] >= -1e-12):
      return v
  raise AssertionError("no KKT point found")


def test_two_conflicting_gradients_by_hand():
  # g1 projected onto {g2ᵀx ≥ 0} is (1/2, 1/2); g2 onto {g1ᵀx ≥ 0} is (0, 1); mean below.
  g = [[1.0, 0.0], [-1.0, 1.0]]
  chex.assert_trees_all_close(_update(g, reg_eps=0.0), np.array([0.25, 0.75]), atol=1e-6)
  chex.assert_trees_all_close(_update(g), np.array([0.25, 0.75]), atol=1e-3)


@pytest.mark.parametrize("t", [2, 3, 5])
def test_no_conflict_with_any_task(t):
  for seed in range(3):
    g = _conflicting(t, seed)
    out = _update(g)
    gram = g @ g.T
    # The ridge relaxes Gw ≥ 0 to Gw ≥ -reg_eps·trace(G)·w; w from out = gᵀw (P > T).
    w = np.linalg.lstsq(g.T, out, rcond=None)[0]
    assert np.all(w >= 1.0 / t - 1e-5)
    assert np.all(g @ out >= -1e-4 * np.trace(gram) * w - 1e-5), g @ out
    out_exact = _update(g, reg_eps=0.0)
    assert np.all(g @ out_exact >= -1e-5 * np.trace(gram)), g @ out_exact


def test_non_conflicting_gradients_give_the_mean():
  rng = np.random.default_rng(0)
  g = np.abs(rng.normal(size=(4, 6)))  # all pairwise dots positive
  chex.assert_trees_all_close(_update(g), g.mean(axis=0), rtol=1e-5)


def test_single_task_identity_and_identical_tasks():
  g = np.array([[0.5, -2.0, 1.0]])
  chex.assert_trees_all_close(_update(g), g[0], rtol=1e-6)
  chex.assert_trees_all_close(_update(np.repeat(g, 3, axis=0)), g[0], rtol=1e-5)
  # Tiny gradients (Σ‖g_i‖² < norm_eps) fall back to the mean, as in torchjd.
  tiny = 1e-3 * np.array([[1.0, 0.0], [-1.0, 1.0]])
  chex.assert_trees_all_close(_update(tiny), tiny.mean(axis=0), rtol=1e-5)


@pytest.mark.parametrize("t", [2, 4, 6])
def test_solver_kkt_and_brute_force(t):
  rng = np.random.default_rng(10 + t)
  solve = jax.jit(jax.vmap(project_weights_dual_cone, in_axes=(0, None)))
  for _ in range(3):
    a = rng.normal(size=(t, t + 2)) + rng.normal() * rng.normal(size=(1, t + 2))
    gram = a @ a.T + 1e-3 * np.eye(t)
    u = rng.uniform(-1.0, 1.0, size=(5, t))
    w = np.asarray(solve(jnp.asarray(u, jnp.float32), jnp.asarray(gram, jnp.float32)), np.float64)
    lam = w @ gram
    scale = np.abs(gram).max() * np.abs(u).max()
    assert np.all(w >= u - 1e-6)
    assert np.all(lam >= -1e-4 * scale)
    np.testing.assert_allclose(np.sum((w - u) * lam, axis=1), 0.0, atol=1e-4 * scale)
    for k in range(len(u)):
      np.testing.assert_allclose(w[k], _brute_force_projection(u[k], gram), atol=1e-3)
