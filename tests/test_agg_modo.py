"""Known answers for ``modo``."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import aggregators


def _agg(**hp):
  agg = aggregators.get("modo", max_tasks=4, **hp)
  return agg, jax.jit(agg.update)


def test_hand_computed_two_steps():
  agg, update = _agg(gamma=0.1, rho=0.0)
  # Step 1: GGᵀ = diag(1, 4), λ = Π_Δ((½, ½) − 0.1 (½, 2)) = Π_Δ(0.45, 0.3) =
  # (0.575, 0.425); update = Gᵀλ = (0.575, 0.85).
  g1 = jnp.array([[1.0, 0.0], [0.0, 2.0]])
  d, state = update(g1, agg.init(jnp.zeros(2)), None)
  chex.assert_trees_all_close(d, jnp.array([0.575, 0.85]), rtol=1e-6)
  np.testing.assert_allclose(state.lam[:2], [0.575, 0.425], rtol=1e-6)
  # Step 2 (no tracking: the new gradients only): GGᵀ = diag(9, 0),
  # λ − 0.1 (9 · 0.575, 0) = (0.0575, 0.425) → (+0.25875 each) (0.31625, 0.68375);
  # update = 0.31625 · (3, 0) = (0.94875, 0).
  g2 = jnp.array([[3.0, 0.0], [0.0, 0.0]])
  d, state = update(g2, state, None)
  np.testing.assert_allclose(state.lam[:2], [0.31625, 0.68375], rtol=1e-6)
  chex.assert_trees_all_close(d, jnp.array([0.94875, 0.0]), rtol=1e-6, atol=1e-7)


def test_rho_regularises_lambda():
  # λ = (0.8, 0.2) kept in the state; G = I, ρ = 1: λ − 0.1 · 2λ = (0.64, 0.16),
  # projected (+0.1 each): (0.74, 0.26).
  agg, update = _agg(gamma=0.1, rho=1.0)
  state = agg.init(jnp.zeros(2))._replace(lam=jnp.array([0.8, 0.2, 1.0, 1.0]))
  d, _ = update(jnp.eye(2), state, None)
  chex.assert_trees_all_close(d, jnp.array([0.74, 0.26]), rtol=1e-6)


def test_single_sample_modo_is_moco_without_tracking():
  rng = np.random.default_rng(0)
  modo = aggregators.get("modo", gamma=0.05, rho=0.1, max_tasks=3)
  moco = aggregators.get("moco", beta=1.0, gamma=0.05, rho=0.1, max_tasks=3)
  params = jnp.zeros(5)
  s_modo, s_moco = modo.init(params), moco.init(params)
  for _ in range(4):
    g = jnp.asarray(rng.normal(size=(3, 5)), jnp.float32)
    d_modo, s_modo = modo.update(g, s_modo, params)
    d_moco, s_moco = moco.update(g, s_moco, params)
    chex.assert_trees_all_close(d_modo, d_moco, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(s_modo.lam, s_moco.lam, rtol=1e-5)


def test_small_gamma_gives_the_mean():
  g = jnp.asarray(np.random.default_rng(1).normal(size=(3, 6)), jnp.float32)
  agg, update = _agg(gamma=1e-9, rho=0.0)
  d, _ = update(g, agg.init(jnp.zeros(6)), None)
  chex.assert_trees_all_close(d, jnp.mean(g, axis=0), rtol=1e-6, atol=1e-6)


def test_state_is_keyed_by_task_id_and_renormalised():
  agg, update = _agg(gamma=0.1, rho=0.0)
  g = jnp.array([[1.0, 0.0], [0.0, 2.0]])
  _, state = update(g, agg.init(jnp.zeros(2)), None, task_ids=jnp.array([2, 0]))
  np.testing.assert_allclose(state.lam, [0.425, 1.0, 0.575, 1.0], rtol=1e-6)
  # Rows 0 and 1 hold (0.425, 1): renormalised to (0.298246, 0.701754) before the step;
  # zero gradients leave them there, so the update is 0 and the rows sum to one.
  d, state = update(jnp.zeros((2, 2)), state, None, task_ids=jnp.array([0, 1]))
  chex.assert_trees_all_close(d, jnp.zeros(2))
  np.testing.assert_allclose(state.lam, [0.425 / 1.425, 1.0 / 1.425, 0.575, 1.0], rtol=1e-6)


def test_pytree_input():
  agg, update = _agg(gamma=0.1, rho=0.0)
  tree = {"a": jnp.array([[1.0], [0.0]]), "b": jnp.array([[0.0], [2.0]])}
  d, _ = update(tree, agg.init({"a": jnp.zeros(1), "b": jnp.zeros(1)}), None)
  chex.assert_trees_all_close(d, {"a": jnp.array([0.575]), "b": jnp.array([0.85])}, rtol=1e-6)


def test_rejects_bad_hyperparameters():
  for hp in [{"gamma": 0.0}, {"gamma": -1.0}, {"rho": -0.1}, {"max_tasks": 0}]:
    field = next(iter(hp))
    with pytest.raises(ValueError, match=f"modo {field}"):
      aggregators.get("modo", **hp)
