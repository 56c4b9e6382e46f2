"""Known answers for ``imtl`` (IMTL-L + IMTL-G), the aggregator and the weighting form."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import aggregators, methods, weighting

G = jnp.array([[1.0, 0.0], [0.0, 2.0]])
LOSSES = jnp.array([2.0, 0.5])


def test_two_steps_by_hand():
  agg = aggregators.get("imtl", max_tasks=3)
  update = jax.jit(agg.update)
  # Step 1: s = 0, scaled rows = G. Orthogonal rows a = (1, 0), b = (0, 2): equal
  # projections α1·1 = α2·2 with α1 + α2 = 1 give α = (2/3, 1/3), update (2/3, 2/3).
  d, state = update(G, agg.init(jnp.zeros(2)), None, losses=LOSSES)
  chex.assert_trees_all_close(d, jnp.array([2 / 3, 2 / 3]), rtol=1e-6)
  # Adam's first step moves s by −lr·sign(e^s L − 1): L = 2 → s1 = −0.01, L = 0.5 → +0.01.
  np.testing.assert_allclose(state.scales, [-0.01, 0.01, 0.0], atol=1e-6)
  # Step 2: scaled rows (e^−0.01, 0), (0, 2e^0.01); α1 = 2e^0.01/(e^−0.01 + 2e^0.01) and the
  # update's two coordinates are equal: α1·e^−0.01.
  d, state = update(G, state, None, losses=LOSSES)
  a, b = np.exp(-0.01), 2 * np.exp(0.01)
  expected = b / (a + b) * a
  chex.assert_trees_all_close(d, jnp.array([expected, expected]), rtol=1e-5)


def test_without_losses_is_imtl_g():
  g = jnp.array([[1.0, 0.5, -1.0], [0.2, 2.0, 0.0], [-0.5, 0.3, 1.0]])
  agg = aggregators.get("imtl", max_tasks=3)
  d, state = agg.update(g, agg.init(jnp.zeros(3)), None)
  ref, _ = aggregators.get("imtl_g").update(g, None, None)
  chex.assert_trees_all_close(d, ref, rtol=1e-5)
  np.testing.assert_array_equal(state.scales, 0.0)


def test_scales_are_keyed_by_task_id():
  agg = aggregators.get("imtl", max_tasks=4)
  _, state = agg.update(G, agg.init(jnp.zeros(2)), None, losses=LOSSES, task_ids=jnp.array([3, 1]))
  np.testing.assert_allclose(state.scales, [0.0, 0.01, 0.0, -0.01], atol=1e-6)


def test_weighting_form_gives_the_same_update():
  g = jnp.array([[1.0, 0.5, -1.0], [0.2, 2.0, 0.0], [-0.5, 0.3, 1.0]])
  losses = jnp.array([0.3, 1.5, 4.0])
  agg, w = aggregators.get("imtl", max_tasks=3), weighting.get("imtl")
  a_state, w_state = agg.init(jnp.zeros(3)), w.init(3)
  for _ in range(3):  # the scales move identically in both forms
    d, a_state = agg.update(g, a_state, None, losses=losses)
    weights, w_state = w.update(losses, w_state, shared_grads=g)
    chex.assert_trees_all_close(d, weights @ g, rtol=1e-5)
  # Equal projections of the update on the three unit gradients.
  proj = (g / jnp.linalg.norm(g, axis=1, keepdims=True)) @ d
  np.testing.assert_allclose(proj, proj[0], rtol=1e-4)


def test_weighting_needs_gradients_and_training_uses_the_aggregator():
  w = weighting.get("imtl")
  with pytest.raises(ValueError, match="shared_grads"):
    w.update(LOSSES, w.init(2))
  method = methods.get("imtl", num_tasks=4, tasks_per_batch=2)
  assert method.requires == frozenset()  # losses and task_ids are filled by the adapter
  assert methods.names().count("imtl") == 1


def test_rejects_bad_hyperparameters():
  for hp in [{"learning_rate": 0.0}, {"optimizer": "rmsprop"}, {"eps": 0.0}]:
    with pytest.raises(ValueError, match="imtl"):
      aggregators.get("imtl", **hp)
