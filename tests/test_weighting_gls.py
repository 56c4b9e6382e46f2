"""Known answers for ``gls``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import weighting


def test_hand_computed_weights():
  # L = (1, 4): geometric mean 2, weights 2 / (2·1) = 1 and 2 / (2·4) = 0.25.
  w = weighting.get("gls")
  weights, _ = jax.jit(w.update)(jnp.array([1.0, 4.0]), w.init(2))
  np.testing.assert_allclose(weights, [1.0, 0.25], rtol=1e-6)
  # L = (1, 2, 4): geometric mean 2, weights 2/(3·1), 2/(3·2), 2/(3·4).
  weights, _ = w.update(jnp.array([1.0, 2.0, 4.0]), w.init(3))
  np.testing.assert_allclose(weights, [2 / 3, 1 / 3, 1 / 6], rtol=1e-6)


def test_single_task_weight_is_one():
  w = weighting.get("gls")
  for value in [1e-3, 0.7, 50.0]:
    weights, _ = w.update(jnp.array([value]), w.init(1))
    np.testing.assert_allclose(weights, [1.0], rtol=1e-6)


def test_weighted_gradient_is_gradient_of_geometric_mean():
  c = jnp.array([[1.0, 0.0], [-1.0, 2.0], [0.5, 0.5]])
  losses_fn = lambda x: 0.5 * jnp.sum((x - c) ** 2, axis=1) + 0.1
  x = jnp.array([0.3, -0.4])
  w = weighting.get("gls")
  weights, _ = w.update(losses_fn(x), w.init(3))
  got = jax.grad(lambda x: jnp.sum(weights * losses_fn(x)))(x)
  expected = jax.grad(lambda x: jnp.prod(losses_fn(x)) ** (1 / 3))(x)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_tiny_product_does_not_underflow():
  w = weighting.get("gls")
  weights, _ = w.update(jnp.full((64,), 1e-3), w.init(64))
  np.testing.assert_allclose(weights, np.full(64, 1 / 64), rtol=1e-5)


def test_rejects_bad_eps():
  with pytest.raises(ValueError, match="gls: eps"):
    weighting.get("gls", eps=0.0)
