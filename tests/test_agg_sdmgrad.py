"""Known answers for ``sdmgrad``."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import aggregators


def _agg(**hp):
  agg = aggregators.get("sdmgrad", max_tasks=4, **hp)
  return agg, jax.jit(agg.update)


def test_hand_computed_two_steps_plain_projected_steps():
  agg, update = _agg(lamda=0.5, niter=1, step_size=0.1, momentum=0.0, scale_gramian=False)
  g = jnp.array([[1.0, 0.0], [0.0, 2.0]])
  # Gramian G = diag(1, 4), G g₀ = G (½, ½) = (0.5, 2).
  # Step 1, w = (½, ½): ∇ = Gw + λ G g₀ = (0.5, 2) + 0.5 (0.5, 2) = (0.75, 3);
  # w − 0.1 ∇ = (0.425, 0.2), projected (+0.1875 each) = (0.6125, 0.3875).
  # d = (Σ w_i g_i + λ g₀) / (1 + λ) = ((0.6125, 0.775) + (0.25, 0.5)) / 1.5 = (0.575, 0.85).
  d, state = update(g, agg.init(jnp.zeros(2)), None)
  chex.assert_trees_all_close(d, jnp.array([0.575, 0.85]), rtol=1e-6)
  np.testing.assert_allclose(state.w[:2], [0.6125, 0.3875], rtol=1e-6)
  # Step 2 warm-starts from w = (0.6125, 0.3875): ∇ = (0.6125, 1.55) + (0.25, 1) =
  # (0.8625, 2.55); w − 0.1 ∇ = (0.52625, 0.1325), projected (+0.170625 each) =
  # (0.696875, 0.303125); d = ((0.696875, 0.60625) + (0.25, 0.5)) / 1.5 = (0.63125, 0.7375).
  d, state = update(g, state, None)
  np.testing.assert_allclose(state.w[:2], [0.696875, 0.303125], rtol=1e-6)
  chex.assert_trees_all_close(d, jnp.array([0.63125, 0.7375]), rtol=1e-6)


def test_hand_computed_normalised_gramian_with_momentum():
  g = jnp.array([[1.0, 0.0], [0.0, 3.0]])
  # Norms 1 and 3: scale = mean norm = 2, Ĝ = diag(1, 9) / 4 = diag(0.25, 2.25),
  # Ĝ g₀ = (0.125, 1.125). λ = 1, step 0.2, two inner steps from w = (½, ½).
  # Step 1: ∇ = Ĝw + Ĝg₀ = (0.25, 2.25) = buf; w − 0.2 buf = (0.45, 0.05) → (0.7, 0.3).
  # Step 2: ∇ = (0.175, 0.675) + (0.125, 1.125) = (0.3, 1.8); buf = 0.5 (0.25, 2.25) + ∇ =
  # (0.425, 2.925); w − 0.2 buf = (0.615, −0.285) → (+0.335 each) (0.95, 0.05).
  # d = ((0.95, 0.15) + (0.5, 1.5)) / 2 = (0.725, 0.825).
  agg, update = _agg(lamda=1.0, niter=2, step_size=0.2, momentum=0.5)
  d, state = update(g, agg.init(jnp.zeros(2)), None)
  np.testing.assert_allclose(state.w[:2], [0.95, 0.05], rtol=1e-5)
  chex.assert_trees_all_close(d, jnp.array([0.725, 0.825]), rtol=1e-5)
  # Without momentum step 2 is w − 0.2 (0.3, 1.8) = (0.64, −0.06) → (0.85, 0.15),
  # d = ((0.85, 0.45) + (0.5, 1.5)) / 2 = (0.675, 0.975).
  agg, update = _agg(lamda=1.0, niter=2, step_size=0.2, momentum=0.0)
  d, _ = update(g, agg.init(jnp.zeros(2)), None)
  chex.assert_trees_all_close(d, jnp.array([0.675, 0.975]), rtol=1e-5)
  # The normalised Gramian makes w scale-free: 10 g gives 10 d.
  d10, _ = update(10.0 * g, agg.init(jnp.zeros(2)), None)
  chex.assert_trees_all_close(d10, 10.0 * d, rtol=1e-5)


def test_lamda_zero_is_mgda_and_large_lamda_the_mean():
  g = jnp.asarray(np.random.default_rng(0).normal(size=(3, 10)), jnp.float32)
  params = jnp.zeros(10)
  mgda = aggregators.get("mgda")
  expected, _ = mgda.update(g, mgda.init(params), params)
  # Enough small plain steps converge to the min-norm weights: λ = 0 is MGDA.
  agg, update = _agg(lamda=0.0, niter=3000, step_size=0.1, momentum=0.0)
  d, _ = update(g, agg.init(params), params)
  chex.assert_trees_all_close(d, expected, atol=1e-4)
  agg, update = _agg(lamda=1e6)
  d, _ = update(g, agg.init(params), params)
  chex.assert_trees_all_close(d, jnp.mean(g, axis=0), atol=1e-5)


def test_identical_gradients_give_g_and_keep_w():
  # Ĝ = c 11ᵀ: ∇ = c(1 + λ) 1 is constant, and a constant shift projects back to w.
  agg, update = _agg()
  state = agg.init(jnp.zeros(3))._replace(w=jnp.array([0.6, 0.2, 0.2, 1.0]))
  g = jnp.tile(jnp.array([1.0, -2.0, 0.5]), (3, 1))
  d, state = update(g, state, None)
  chex.assert_trees_all_close(d, g[0], rtol=1e-5)  # 20 projections: float32 round-off
  np.testing.assert_allclose(state.w, [0.6, 0.2, 0.2, 1.0], rtol=1e-5)


def test_state_is_keyed_by_task_id_and_renormalised():
  agg, update = _agg(lamda=0.5, niter=1, step_size=0.1, momentum=0.0, scale_gramian=False)
  g = jnp.array([[1.0, 0.0], [0.0, 2.0]])
  # Rows 2 and 0 hold 1 each (init): renormalised to (½, ½), as step 1 above.
  _, state = update(g, agg.init(jnp.zeros(2)), None, task_ids=jnp.array([2, 0]))
  np.testing.assert_allclose(state.w, [0.3875, 1.0, 0.6125, 1.0], rtol=1e-6)
  # Zero gradients leave the (renormalised) weights of the sampled tasks: rows 1, 3 hold
  # (1, 1) → (½, ½); rows 0, 2 hold (0.3875, 0.6125), already on the simplex.
  z = jnp.zeros((2, 2))
  d, state = update(z, state, None, task_ids=jnp.array([1, 3]))
  chex.assert_trees_all_close(d, jnp.zeros(2))
  np.testing.assert_allclose(state.w, [0.3875, 0.5, 0.6125, 0.5], rtol=1e-6)


def test_pytree_input():
  agg, update = _agg(lamda=0.5, niter=1, step_size=0.1, momentum=0.0, scale_gramian=False)
  tree = {"a": jnp.array([[1.0], [0.0]]), "b": jnp.array([[0.0], [2.0]])}
  d, _ = update(tree, agg.init({"a": jnp.zeros(1), "b": jnp.zeros(1)}), None)
  chex.assert_trees_all_close(d, {"a": jnp.array([0.575]), "b": jnp.array([0.85])}, rtol=1e-6)


def test_rejects_bad_hyperparameters():
  bad = [
    {"lamda": -0.1},
    {"niter": 0},
    {"niter": 2.5},
    {"step_size": 0.0},
    {"momentum": 1.0},
    {"momentum": -0.1},
    {"max_tasks": 0},
  ]
  for hp in bad:
    field = next(iter(hp))
    with pytest.raises(ValueError, match=f"sdmgrad {field}"):
      aggregators.get("sdmgrad", **hp)
