"""Losses and metrics against hand calculations; Δm% sign convention."""

import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import metrics
from mtl_jax.losses import per_example_loss
from mtl_jax.tasks import KIND_ID, TaskSpec, make_taskset


def test_softmax_ce_ignores_padded_classes():
  out = jnp.array([[1.0, 2.0, 100.0]])  # the third class does not exist for this task
  y = jnp.array([[1.0]])
  mask = jnp.array([True, True, False])
  loss = per_example_loss(out, y, jnp.array(KIND_ID["softmax_ce"]), mask)
  np.testing.assert_allclose(loss, [np.log(1 + np.exp(-1.0))], rtol=1e-6)


def test_sigmoid_and_mse_average_over_real_outputs():
  out = jnp.array([[0.0, 2.0, 7.0]])
  y = jnp.array([[1.0, 0.0]])
  mask = jnp.array([True, True, False])
  bce = per_example_loss(out, y, jnp.array(KIND_ID["sigmoid_ce"]), mask)
  np.testing.assert_allclose(bce, [(np.log(2) + np.log(1 + np.exp(2.0))) / 2], rtol=1e-6)
  se = per_example_loss(out, y, jnp.array(KIND_ID["mse"]), mask)
  np.testing.assert_allclose(se, [(1.0 + 4.0) / 2], rtol=1e-6)


def test_metrics_in_original_units_and_padding_ignored():
  out = jnp.array([[1.0], [3.0], [99.0]])  # standardised predictions; row 3 is padding
  y = jnp.array([[1.0], [1.0], [0.0]])
  m = metrics.task_metrics(
    out, y, jnp.array(KIND_ID["mse"]), jnp.array([True]), 2, jnp.array([10.0]), jnp.array([2.0])
  )
  # Original units: preds 12, 16; labels 12, 12 → MSE = (0 + 16) / 2.
  np.testing.assert_allclose(m["mse"], 8.0, rtol=1e-6)
  acc = metrics.task_metrics(
    jnp.array([[0.1, 0.9], [0.8, 0.2]]),
    jnp.array([[1.0], [1.0]]),
    jnp.array(KIND_ID["softmax_ce"]),
    jnp.array([True, True]),
    2,
    jnp.zeros(1),
    jnp.ones(1),
  )["accuracy"]
  np.testing.assert_allclose(acc, 0.5)


def test_delta_m_sign_convention():
  x = np.zeros((4, 1))
  ts = make_taskset(
    "d",
    [TaskSpec("c", "softmax_ce", 2), TaskSpec("r", "mse", 1)],
    [(x, np.array([0, 1, 0, 1])), (x, np.arange(4.0))],
    [(x, np.array([0, 1, 0, 1])), (x, np.arange(4.0))],
  )
  mtl = {"c": {"accuracy": 0.9}, "r": {"mse": 1.0}}
  stl = {"c": {"accuracy": 0.8}, "r": {"mse": 2.0}}
  dm, per = metrics.delta_m(ts, mtl, stl)
  assert per["c"] == pytest.approx(12.5) and per["r"] == pytest.approx(50.0)
  assert dm == pytest.approx(31.25)
