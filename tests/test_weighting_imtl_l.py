"""Known answers for ``imtl_l``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import weighting


def test_hand_computed_sgd_steps():
  # s = 0: weights 1; ∂/∂s = e^s L − 1 = (1, −0.5) for L = (2, 0.5); s ← −0.1·(1, −0.5).
  w = weighting.get("imtl_l", optimizer="sgd", learning_rate=0.1)
  update = jax.jit(w.update)
  weights, state = update(jnp.array([2.0, 0.5]), w.init(2))
  np.testing.assert_allclose(weights, [1.0, 1.0])
  np.testing.assert_allclose(state.scales, [-0.1, 0.05], rtol=1e-6)
  weights, _ = update(jnp.array([2.0, 0.5]), state)
  np.testing.assert_allclose(weights, np.exp([-0.1, 0.05]), rtol=1e-6)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_weights_converge_to_inverse_loss(optimizer):
  w = weighting.get("imtl_l", optimizer=optimizer, learning_rate=0.05)
  losses = jnp.array([4.0, 0.25, 1.0])

  def body(state, _):
    weights, state = w.update(losses, state)
    return state, weights

  _, weights = jax.jit(lambda: jax.lax.scan(body, w.init(3), None, length=2000))()
  np.testing.assert_allclose(weights[-1], 1.0 / losses, rtol=2e-2)


def test_moves_only_sampled_tasks():
  w = weighting.get("imtl_l", optimizer="sgd", learning_rate=0.1)
  _, state = w.update(jnp.array([3.0]), w.init(3), jnp.array([2]))
  np.testing.assert_allclose(state.scales, [0.0, 0.0, -0.2], rtol=1e-6)


@pytest.mark.parametrize(
  ("hyperparams", "field"),
  [
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"optimizer": "x"}, "optimizer"),
    ({"scale_bound": -1.0}, "scale_bound"),
  ],
)
def test_rejects_bad_hyperparameters(hyperparams, field):
  with pytest.raises(ValueError, match=f"imtl_l: {field}"):
    weighting.get("imtl_l", **hyperparams)
