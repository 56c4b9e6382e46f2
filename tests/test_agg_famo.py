"""Known answers for ``famo``."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import aggregators


def _agg(**hp):
  agg = aggregators.get("famo", eps=1e-12, max_tasks=4, **hp)
  return agg, jax.jit(agg.update)


def test_first_step_equal_logits_weighs_by_inverse_loss():
  # ξ = 0: a_i = (1/L_i) / Σ_j 1/L_j. L = (1, 4): a = (0.8, 0.2).
  g = jnp.array([[1.0, 0.0], [0.0, 2.0]])
  agg, update = _agg()
  d, state = update(g, agg.init(None), None, losses=jnp.array([1.0, 4.0]))
  chex.assert_trees_all_close(d, jnp.array([0.8, 0.4]), rtol=1e-6)
  # The first step has no previous loss: ξ and the optimiser are untouched.
  chex.assert_trees_all_equal(state.xi, jnp.zeros(4))
  assert bool(state.seen[0]) and bool(state.seen[1]) and not bool(state.seen[2])
  np.testing.assert_allclose(state.prev_log_loss[:2], np.log([1.0, 4.0]), rtol=1e-6)


def test_hand_computed_logit_step_sgd():
  # Step 1: L = (1, 4); step 2: L = (e^-1, 4) so δ = (1, 0). With ξ = 0, z = (½, ½):
  # J_zᵀδ = z ∘ (δ − zᵀδ) = (¼, −¼); ξ ← 0 − 0.1 (¼, −¼) − 0.1·γ·0 = (−0.025, 0.025).
  g = jnp.array([[1.0, 0.0], [0.0, 2.0]])
  agg, update = _agg(optimizer="sgd", w_lr=0.1, gamma=0.5)
  _, state = update(g, agg.init(None), None, losses=jnp.array([1.0, 4.0]))
  l2 = jnp.array([np.exp(-1.0), 4.0], jnp.float32)
  d, state = update(g, state, None, losses=l2)
  xi = np.array([-0.025, 0.025])
  np.testing.assert_allclose(state.xi[:2], xi, rtol=1e-5)
  # The weights use the new ξ: a ∝ softmax(ξ) / L.
  r = np.exp(xi) / np.exp(xi).sum() / np.asarray(l2)
  a = r / r.sum()
  chex.assert_trees_all_close(d, jnp.array([a[0], 2 * a[1]]), rtol=1e-5)
  # Step 3 (δ = 0): only the decay acts, ξ ← ξ − 0.1·0.5·ξ.
  _, state = update(g, state, None, losses=l2)
  np.testing.assert_allclose(state.xi[:2], 0.95 * xi, rtol=1e-5)


def test_adam_first_logit_step_is_sign_step():
  # Adam's first step is −lr·m̂/(√v̂ + eps) = −lr·sign(gradient).
  g = jnp.eye(2)
  agg, update = _agg(w_lr=0.025, gamma=0.0)
  _, state = update(g, agg.init(None), None, losses=jnp.array([1.0, 4.0]))
  _, state = update(g, state, None, losses=jnp.array([0.5, 4.0]))
  np.testing.assert_allclose(state.xi[:2], [-0.025, 0.025], rtol=1e-4)


def test_state_is_keyed_by_task_id():
  g = jnp.eye(2, 3)
  agg, update = _agg(optimizer="sgd", w_lr=0.1, gamma=0.0)
  ids = jnp.array([3, 1])
  _, state = update(g, agg.init(None), None, losses=jnp.array([1.0, 4.0]), task_ids=ids)
  _, state = update(g, state, None, losses=jnp.array([np.exp(-1.0), 4.0]), task_ids=ids)
  np.testing.assert_allclose(state.xi, [0.0, 0.025, 0.0, -0.025], rtol=1e-5, atol=1e-7)
  # Task 0 joins: δ_0 = 0 (first loss), the others compare with their own last losses.
  _, state2 = update(g, state, None, losses=jnp.array([2.0, 4.0]), task_ids=jnp.array([0, 1]))
  assert bool(state2.seen[0])
  np.testing.assert_allclose(state2.xi[2:], state.xi[2:])


def test_no_losses_gives_softmax_of_logits():
  g = jnp.asarray(np.random.default_rng(0).normal(size=(3, 5)), jnp.float32)
  agg, update = _agg()
  d, _ = update(g, agg.init(None), None)
  chex.assert_trees_all_close(d, jnp.mean(g, axis=0), rtol=1e-5)


def test_rejects_bad_hyperparameters():
  for hp in [{"w_lr": 0.0}, {"gamma": -1.0}, {"optimizer": "rmsprop"}, {"eps": 0.0}]:
    with pytest.raises(ValueError, match="famo"):
      aggregators.get("famo", **hp)
