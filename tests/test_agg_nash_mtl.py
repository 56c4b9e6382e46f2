"""Known answers for ``nash_mtl``."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import aggregators
from mtl_jax.aggregators.nash_mtl import nash_solve


def _residual(alpha, g):
  g = np.asarray(g, np.float64)
  alpha = np.asarray(alpha, np.float64)
  return np.max(np.abs(alpha * (g @ g.T @ alpha) - 1.0))  # scale-free form of Gα = 1/α


@pytest.mark.parametrize("t", [2, 3, 8, 32])
def test_alpha_solves_bargaining_equation(t):
  rng = np.random.default_rng(t)
  g = rng.normal(size=(t, 64)) * np.logspace(-2, 2, t)[:, None]  # mixed gradient scales
  g = jnp.asarray(g, jnp.float32)
  alpha = jax.jit(nash_solve)(g @ g.T)
  assert (np.asarray(alpha) > 0).all()
  assert _residual(alpha, g) < 1e-4


def _alpha(state, g, ids=None):
  """α = β/‖g‖ of the tasks ``ids`` (default 0..K-1) from the state's β table."""
  ids = np.arange(len(g)) if ids is None else ids
  return state.beta[np.asarray(ids)] / jnp.linalg.norm(g, axis=1)


def test_state_keeps_beta_and_update_is_alpha_weighted_sum():
  g = jnp.asarray(np.random.default_rng(0).normal(size=(4, 16)), jnp.float32)
  agg = aggregators.get("nash_mtl", max_tasks=6)
  d, state = jax.jit(agg.update)(g, agg.init(jnp.zeros(16)), None)
  assert _residual(_alpha(state, g), g) < 1e-4
  np.testing.assert_array_equal(state.beta[4:], 0.0)  # tasks 4, 5 never seen
  chex.assert_trees_all_close(d, _alpha(state, g) @ g, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(jnp.sum(d * d), 4.0, rtol=1e-4)  # ‖d‖² = αᵀGα = T


def test_orthogonal_gradients_give_sum_of_unit_vectors():
  g = jnp.array([[3.0, 0.0], [0.0, 0.5]])
  agg = aggregators.get("nash_mtl")
  d, _ = jax.jit(agg.update)(g, agg.init(None), None)
  chex.assert_trees_all_close(d, jnp.array([1.0, 1.0]), rtol=1e-5)


def test_invariant_to_loss_scales():
  g = jnp.asarray(np.random.default_rng(1).normal(size=(3, 8)), jnp.float32)
  agg = aggregators.get("nash_mtl")
  d, _ = jax.jit(agg.update)(g, agg.init(None), None)
  d_scaled, _ = jax.jit(agg.update)(g * jnp.array([[100.0], [1.0], [0.01]]), agg.init(None), None)
  chex.assert_trees_all_close(d, d_scaled, rtol=1e-4, atol=1e-5)


def test_update_weights_every_reuses_alpha():
  rng = np.random.default_rng(2)
  g1, g2 = (jnp.asarray(rng.normal(size=(3, 8)), jnp.float32) for _ in range(2))
  agg = aggregators.get("nash_mtl", max_tasks=3, update_weights_every=2)
  step = jax.jit(agg.update)
  _, state = step(g1, agg.init(jnp.zeros(8)), None)
  d2, state2 = step(g2, state, None)
  # Reused per task: α_i = β_i/‖g_i‖ with β from g1 and the norms of g2 (scale-free).
  chex.assert_trees_all_close(d2, _alpha(state, g2) @ g2, rtol=1e-5, atol=1e-6)
  chex.assert_trees_all_close(state2.beta, state.beta, rtol=1e-6)
  _, state3 = step(g2, state2, None)  # third update re-solves on g2
  assert _residual(_alpha(state3, g2), g2) < 1e-4


def test_max_norm_clips_and_zero_row_is_finite():
  g = jnp.asarray(np.random.default_rng(3).normal(size=(3, 8)), jnp.float32).at[2].set(0.0)
  agg = aggregators.get("nash_mtl", max_norm=0.5, max_tasks=3)
  d, state = jax.jit(agg.update)(g, agg.init(jnp.zeros(8)), None)
  chex.assert_tree_all_finite((d, state))
  np.testing.assert_allclose(jnp.linalg.norm(d), 0.5, rtol=1e-5)
  assert state.beta[2] == 0.0
  with pytest.raises(ValueError, match="max_tasks"):
    aggregators.get("nash_mtl", update_weights_every=3)
  with pytest.raises(ValueError, match="max_tasks=3"):
    agg.update(jnp.zeros((4, 8)), agg.init(jnp.zeros(8)))


def test_task_ids_select_rows_of_the_beta_table():
  g = jnp.asarray(np.random.default_rng(4).normal(size=(2, 8)), jnp.float32)
  agg = aggregators.get("nash_mtl", max_tasks=5)
  d, state = jax.jit(agg.update)(g, agg.init(jnp.zeros(8)), None, task_ids=jnp.array([4, 1]))
  np.testing.assert_array_equal(np.asarray(state.beta)[[0, 2, 3]], 0.0)
  chex.assert_trees_all_close(d, _alpha(state, g, [4, 1]) @ g, rtol=1e-5, atol=1e-6)
  assert _residual(_alpha(state, g, [4, 1]), g) < 1e-4
