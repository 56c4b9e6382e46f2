"""Known answers for ``moco``."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import aggregators


def _agg(**hp):
  agg = aggregators.get("moco", max_tasks=4, **hp)
  return agg, jax.jit(agg.update)


def test_hand_computed_two_steps():
  agg, update = _agg(beta=0.5, gamma=0.1)
  # Step 1: y = g (first sight), YYᵀ = diag(1, 4), λ = Π_Δ((½, ½) − 0.1(½, 2)) =
  # Π_Δ(0.45, 0.3) = (0.575, 0.425); update = (0.575, 0.85).
  g1 = jnp.array([[1.0, 0.0], [0.0, 2.0]])
  d, state = update(g1, agg.init(jnp.zeros(2)), None)
  chex.assert_trees_all_close(d, jnp.array([0.575, 0.85]), rtol=1e-6)
  np.testing.assert_allclose(state.lam[:2], [0.575, 0.425], rtol=1e-6)
  # Step 2: y1 = (1,0) − ½((1,0) − (3,0)) = (2, 0), y2 = (0,2) − ½(0,2) = (0, 1);
  # λ = Π_Δ((0.575, 0.425) − 0.1(4·0.575, 0.425)) = Π_Δ(0.345, 0.3825) = (0.48125, 0.51875).
  g2 = jnp.array([[3.0, 0.0], [0.0, 0.0]])
  d, state = update(g2, state, None)
  np.testing.assert_allclose(state.y[:2], [[2.0, 0.0], [0.0, 1.0]], rtol=1e-6)
  chex.assert_trees_all_close(d, jnp.array([0.9625, 0.51875]), rtol=1e-5)


def test_rho_regularises_lambda():
  # λ = (0.8, 0.2) kept in the state; Y = diag(1, 1), ρ = 1: λ − 0.1·2λ = (0.64, 0.16),
  # projected: (0.74, 0.26).
  agg, update = _agg(gamma=0.1, rho=1.0)
  state = agg.init(jnp.zeros(2))._replace(lam=jnp.array([0.8, 0.2, 1.0, 1.0]))
  d, _ = update(jnp.eye(2), state, None)
  chex.assert_trees_all_close(d, jnp.array([0.74, 0.26]), rtol=1e-6)


def test_state_is_keyed_by_task_id():
  agg, update = _agg(beta=0.5)
  g = jnp.array([[1.0, 0.0], [0.0, 2.0]])
  _, state = update(g, agg.init(jnp.zeros(2)), None, task_ids=jnp.array([2, 0]))
  np.testing.assert_array_equal(state.seen, [True, False, True, False])
  np.testing.assert_allclose(state.y[2], [1.0, 0.0])
  np.testing.assert_allclose(state.y[0], [0.0, 2.0])
  np.testing.assert_allclose(state.lam[jnp.array([2, 0])], [0.575, 0.425], rtol=1e-6)


def test_rejects_bad_hyperparameters():
  for hp in [{"beta": 0.0}, {"gamma": 0.0}, {"rho": -1.0}]:
    with pytest.raises(ValueError, match="moco"):
      aggregators.get("moco", **hp)
