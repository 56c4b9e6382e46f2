"""DSelect-k: smooth-step, single expert selectors, gates and the model (``dselect_k``)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import models
from mtl_jax.models.dselect_k import (
  binary_codes,
  dselect_weights,
  num_bits,
  selector,
  smooth_step,
)

T = 3


def test_smooth_step_and_codes():
  g = 2.0
  t = jnp.array([-5.0, -1.0, -0.5, 0.0, 0.5, 1.0, 5.0])
  s = smooth_step(t, g)
  cubic = lambda u: -2 * u**3 / g**3 + 3 * u / (2 * g) + 0.5  # noqa: E731
  np.testing.assert_allclose(s, [0, 0, cubic(-0.5), 0.5, cubic(0.5), 1, 1], atol=1e-6)
  assert np.all(np.diff(np.asarray(smooth_step(jnp.linspace(-2, 2, 101), g))) >= 0)
  assert [num_bits(n) for n in (1, 2, 3, 4, 5, 8, 9)] == [1, 1, 2, 2, 3, 3, 4]
  # Column j is the bits of j, least significant first.
  np.testing.assert_array_equal(
    binary_codes(5), [[0, 1, 0, 1, 0], [0, 0, 1, 1, 0], [0, 0, 0, 0, 1]]
  )


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8])
def test_gate_is_a_probability_vector(n):
  m, k = num_bits(n), 3
  kz, ka = jax.random.split(jax.random.PRNGKey(n))
  for scale in (0.01, 0.3, 3.0):  # inside, around and beyond the smooth-step's ramp
    z = scale * jax.random.normal(kz, (50, k, m))
    alpha = jax.random.normal(ka, (50, k))
    q = dselect_weights(z, alpha, n, gamma=1.0)
    chex.assert_shape(q, (50, n))
    chex.assert_tree_all_finite(q)
    assert np.all(np.asarray(q) >= 0)
    np.testing.assert_allclose(q.sum(-1), 1.0, rtol=1e-5)


def test_selector_is_one_hot_on_the_sign_pattern():
  gamma = 0.01
  # z_l > 0 <=> bit l set (LSB first): (+, -, +) is 1 + 4 = expert 5 of 8.
  r = selector(jnp.array([0.5, -0.5, 0.5]), 8, gamma)
  np.testing.assert_array_equal(r, np.eye(8)[5])
  # n = 5 (not a power of 2): (+, +, -) is expert 3.
  r = selector(jnp.array([1.0, 1.0, -1.0]), 5, gamma)
  np.testing.assert_array_equal(r, np.eye(5)[3])
  # Every sign pattern of 4 experts, by hand.
  for j, z in enumerate([(-1, -1), (1, -1), (-1, 1), (1, 1)]):
    np.testing.assert_array_equal(selector(jnp.array(z, float), 4, gamma), np.eye(4)[j])
  # At z = 0 every bit is a coin flip: uniform over the experts.
  np.testing.assert_allclose(selector(jnp.zeros(3), 8), np.full(8, 1 / 8), rtol=1e-6)


def test_non_power_of_two_renormalises_over_existing_experts():
  z = jnp.array([0.1, -0.2])  # m = 2 bits, n = 3 experts: code 3 does not exist
  s = np.asarray(smooth_step(z))
  full = np.array([(1 - s[0]) * (1 - s[1]), s[0] * (1 - s[1]), (1 - s[0]) * s[1], s[0] * s[1]])
  np.testing.assert_allclose(selector(z, 3), full[:3] / full[:3].sum(), rtol=1e-6)
  # Saturated on the missing code 3: falls back to uniform, with finite gradients.
  np.testing.assert_allclose(selector(jnp.array([1.0, 1.0]), 3), np.full(3, 1 / 3), rtol=1e-6)
  g = jax.grad(lambda z: selector(z, 3)[0])(jnp.array([1.0, 1.0]))
  chex.assert_tree_all_finite(g)


def test_k_selectors_mix_by_softmax_alpha():
  gamma = 0.01
  z = jnp.array([[1.0, -1.0], [-1.0, 1.0]])  # selector 0 -> expert 1, selector 1 -> expert 2
  alpha = jnp.array([0.3, -0.4])
  w = np.asarray(jax.nn.softmax(alpha))
  np.testing.assert_allclose(dselect_weights(z, alpha, 4, gamma), [0, w[0], w[1], 0], rtol=1e-6)


def test_model_layout_and_static_gate():
  model = models.get("dselect_k", num_tasks=T, output_size=1, num_experts=5, k=2, width=4)
  x = jax.random.normal(jax.random.PRNGKey(0), (7, 6))
  params = model.init(jax.random.PRNGKey(1), x)
  chex.assert_shape(params["shared"]["experts"]["Dense_0"]["kernel"], (5, 6, 4))
  chex.assert_shape(params["tasks"]["gate"]["z"], (T, 2, 3))
  chex.assert_shape(params["tasks"]["gate"]["alpha"], (T, 2))
  # Near-zero init: selectors start close to uniform, on the smooth-step's ramp.
  assert float(jnp.abs(params["tasks"]["gate"]["z"]).max()) <= 0.01
  g = jax.jit(jax.vmap(model.gates, in_axes=(0, None)))(params["tasks"], x)
  chex.assert_shape(g, (T, 7, 5))
  np.testing.assert_allclose(g.sum(-1), 1.0, rtol=1e-6)
  np.testing.assert_allclose(g, jnp.broadcast_to(g[:, :1], g.shape))  # static: input-free
  # The loss reaches the gate parameters at init (not saturated).
  xs = jnp.broadcast_to(x, (T, 7, 6))
  grad = jax.grad(lambda p: (model.apply(p, xs, jnp.arange(T)) ** 2).sum())(params)
  assert float(jnp.abs(grad["tasks"]["gate"]["z"]).sum()) > 0
  assert float(jnp.abs(grad["tasks"]["gate"]["alpha"]).sum()) > 0


def test_per_example_gate():
  model = models.get("dselect_k", num_tasks=T, output_size=1, num_experts=3, per_example=True)
  x = jax.random.normal(jax.random.PRNGKey(0), (7, 6))
  params = model.init(jax.random.PRNGKey(1), x)
  chex.assert_shape(params["tasks"]["gate"]["z"]["kernel"], (T, 6, 2 * 2))
  g = jax.vmap(model.gates, in_axes=(0, None))(params["tasks"], x)
  np.testing.assert_allclose(g.sum(-1), 1.0, rtol=1e-6)
  assert float(jnp.abs(g - g[:, :1]).max()) > 0  # depends on the example


def test_k1_saturated_selects_exactly_one_expert():
  model = models.get("dselect_k", num_tasks=T, output_size=1, num_experts=4, k=1, gamma=0.1)
  x = jax.random.normal(jax.random.PRNGKey(0), (T, 5, 6))
  params = model.init(jax.random.PRNGKey(1), x[0])
  # Task t selects expert (t + 1) % 4 once |z| >= γ/2.
  codes = np.asarray(binary_codes(4)).T  # [n, m]
  z = jnp.asarray([[2 * codes[(t + 1) % 4] - 1] for t in range(T)], jnp.float32)  # [T, 1, m]
  params["tasks"]["gate"]["z"] = z
  g = jax.vmap(model.gates, in_axes=(0, None))(params["tasks"], x[0])
  for t in range(T):
    np.testing.assert_array_equal(g[t], np.broadcast_to(np.eye(4)[(t + 1) % 4], (5, 4)))
  # Only the selected expert gets gradient from task t's loss; the gate itself is saturated.
  for t in range(T):
    grad = jax.grad(lambda p, t=t: model.apply(p, x[t : t + 1], jnp.array([t])).sum())(params)
    per_expert = np.abs(np.asarray(grad["shared"]["experts"]["Dense_0"]["kernel"])).sum((1, 2))
    assert np.count_nonzero(per_expert) == 1 and per_expert[(t + 1) % 4] > 0
    assert float(jnp.abs(grad["tasks"]["gate"]["z"]).sum()) == 0


def test_bad_arguments():
  for kw in ({"num_experts": 0}, {"k": 0}, {"gamma": 0.0}):
    with pytest.raises(ValueError):
      models.get("dselect_k", num_tasks=T, output_size=1, **kw)
