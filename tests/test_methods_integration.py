"""Every registered weighting and aggregator trains through the real train step."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import data, methods, models
from mtl_jax.data.sampling import DeviceData
from mtl_jax.train import make_chunk, make_optimizer, make_train_step

METHOD_KWARGS = {"static": {"weights": [1.0, 2.0, 0.5]}}
TS = data.get_taskset(
  "mmoe_regression", num_tasks=3, dim=8, n_train=64, n_test=32, num_sines=2, correlation=0.5
)


def _run(method, k, taskset=TS, model="hard_sharing", steps=60):
  m = models.get(model, num_tasks=taskset.num_tasks, output_size=taskset.output_size, width=16)
  d = DeviceData.from_taskset(taskset)
  init, step = make_train_step(
    m,
    d,
    make_optimizer("adam", 1e-2),
    method,
    METHOD_KWARGS.get(method),
    tasks_per_batch=k,
    batch_size=16,
    shared_inputs=taskset.shared_inputs,
  )
  params = m.init(jax.random.PRNGKey(0), jnp.asarray(taskset.x_train[0, :2]))
  run = make_chunk(step, steps // 2)
  state, first = run(init(jax.random.PRNGKey(1), params))
  state, last = run(state)
  return state, first, last


# MGDA-UB's bound needs one shared representation, hence one input batch for all tasks.
SHARED_INPUTS_ONLY = {"mgda_ub": data.get_taskset("digit_attributes", include_regression=True)}


@pytest.mark.parametrize("method", methods.names())
def test_method_trains_with_k_less_than_t(method):
  state, first, last = _run(method, k=2, taskset=SHARED_INPUTS_ONLY.get(method, TS))
  chex.assert_tree_all_finite(state.params)
  f = np.asarray(first["loss_sum"]).sum() / np.asarray(first["loss_count"]).sum()
  l_ = np.asarray(last["loss_sum"]).sum() / np.asarray(last["loss_count"]).sum()
  assert l_ < f, (method, f, l_)


@pytest.mark.parametrize("method", ["pcgrad", "mgda_ub", "upgrad", "gradnorm"])
def test_method_on_shared_inputs(method):
  ts = data.get_taskset("digit_attributes", include_regression=True)
  state, first, last = _run(method, k=ts.num_tasks, taskset=ts, steps=40)
  chex.assert_tree_all_finite(state.params)
  assert np.asarray(last["loss_sum"]).sum() < np.asarray(first["loss_sum"]).sum()


def test_mgda_ub_needs_a_shared_representation():
  with pytest.raises(ValueError, match="shared representation"):
    _run("mgda_ub", k=3, model="independent")


def test_gradnorm_needs_a_shared_layer():
  with pytest.raises(ValueError, match="needs a shared layer"):
    _run("gradnorm", k=3, model="independent")
