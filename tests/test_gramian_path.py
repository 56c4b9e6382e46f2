"""The Jacobian-free Gramian path (``mtl_jax.gramian``): same update as the Jacobian path."""

import chex
import jax
import jax.numpy as jnp
import pytest

from mtl_jax import aggregators, data, gramian, methods, models
from mtl_jax.data.sampling import DeviceData, sample_batch
from mtl_jax.gradients import Objective
from mtl_jax.train import make_chunk, make_optimizer, make_train_step

SHARED = data.get_taskset("digit_attributes", include_regression=True)
PER_TASK = data.get_taskset(
  "mmoe_regression", num_tasks=4, dim=8, n_train=64, n_test=32, num_sines=2, correlation=0.5
)


def _grads(name, taskset, **kwargs):
  """(grads, losses, weights, state) of one step of ``name`` from a fixed state and batch."""
  t = taskset.num_tasks
  model = models.get("hard_sharing", num_tasks=t, output_size=taskset.output_size, width=16)
  d = DeviceData.from_taskset(taskset)
  params = model.init(jax.random.PRNGKey(0), jnp.asarray(taskset.x_train[0, :2]))
  meth = methods.get(name, num_tasks=t, **kwargs)
  obj = Objective(model, d.kind, d.out_mask, taskset.shared_inputs)
  batch = sample_batch(jax.random.PRNGKey(2), d, t, 8, taskset.shared_inputs)
  extras = methods.compute_extras(meth, obj, params, batch, jax.random.PRNGKey(3), 0)
  state = meth.init(params, t)
  return jax.jit(lambda p, s: meth.grads(obj, p, s, batch, extras))(params, state)


CASES = [(n, PER_TASK) for n in sorted(gramian.GRAMIAN_METHODS)]
CASES += [("upgrad", SHARED), ("nash_mtl", SHARED)]


@pytest.mark.parametrize(("name", "taskset"), CASES, ids=[f"{n}-{t.name}" for n, t in CASES])
def test_gramian_path_equals_jacobian_path(name, taskset):
  g_jac, l_jac, _, s_jac = _grads(name, taskset, gramian="never")
  g_gram, l_gram, _, s_gram = _grads(name, taskset, gramian="always")
  chex.assert_trees_all_close(l_gram, l_jac, rtol=1e-6)
  scale = max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(g_jac))
  chex.assert_trees_all_close(g_gram, g_jac, rtol=1e-3, atol=1e-4 * scale)
  chex.assert_trees_all_close(s_gram, s_jac, rtol=1e-3, atol=1e-5)


def test_gramian_path_with_normalize_and_weigh_heads():
  kw = {"normalize": True, "weigh_heads": True}
  g_jac, _, w_jac, _ = _grads("upgrad", PER_TASK, gramian="never", **kw)
  g_gram, _, w_gram, _ = _grads("upgrad", PER_TASK, gramian="always", **kw)
  chex.assert_trees_all_close(w_gram, w_jac, rtol=1e-3, atol=1e-4)
  chex.assert_trees_all_close(g_gram, g_jac, rtol=1e-3, atol=1e-5)


def test_gramian_weights_recover_known_weights():
  # Rows e0, e1 and e0 + e1: mgda's min-norm point of their hull is (e0 + e1)/2 ... from
  # the Gramian alone; the recovered w must reproduce it through J.
  j = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
  agg = aggregators.get("mgda")
  w, _ = gramian.gramian_weights(agg, j @ j.T, agg.init(None))
  chex.assert_trees_all_close(w @ j, jnp.array([0.5, 0.5]), atol=1e-5)
  direct, _ = agg.update(j, agg.init(None), None)
  chex.assert_trees_all_close(w @ j, direct, atol=1e-5)


def test_auto_threshold_and_bad_choices():
  shared = {"w": jnp.zeros((1000, 100))}
  assert not gramian.use_gramian("upgrad", "auto", 32, shared)  # 3.2M < 2^26
  assert gramian.use_gramian("upgrad", "auto", 32, {"w": jnp.zeros((4096, 1024))})
  assert gramian.use_gramian("upgrad", "always", 2, shared)
  assert not gramian.use_gramian("pcgrad", "auto", 32, {"w": jnp.zeros((4096, 1024))})
  with pytest.raises(ValueError, match="gramian must be one of auto, always, never"):
    methods.get("upgrad", num_tasks=3, gramian="yes")
  with pytest.raises(ValueError, match="'pcgrad' with gramian='always'"):
    methods.get("pcgrad", num_tasks=3, gramian="always")
  with pytest.raises(ValueError, match="rep_grad=True exclude"):
    methods.get("mgda", num_tasks=3, gramian="always", rep_grad=True)


def _temp_bytes(gramian_choice):
  ts = data.get_taskset(
    "mmoe_regression", num_tasks=16, dim=8, n_train=32, n_test=8, num_sines=2, correlation=0.5
  )
  model = models.get("hard_sharing", num_tasks=16, output_size=ts.output_size, width=128)
  init, step = make_train_step(
    model,
    DeviceData.from_taskset(ts),
    make_optimizer("adam"),
    "mgda",
    {"gramian": gramian_choice},
    tasks_per_batch=16,
    batch_size=8,
  )
  params = model.init(jax.random.PRNGKey(0), jnp.asarray(ts.x_train[0, :2]))
  m = make_chunk(step, 1).lower(init(jax.random.PRNGKey(1), params)).compile().memory_analysis()
  return m.temp_size_in_bytes, sum(x.size for x in jax.tree.leaves(params["shared"]))


def test_gramian_path_never_holds_the_jacobian():
  # XLA's compiled memory analysis (deterministic): the Jacobian path's temporaries hold the
  # K x |θ^sh| per-task gradients, the Gramian path's stay below that.
  jac_bytes, size = _temp_bytes("never")
  gram_bytes, _ = _temp_bytes("always")
  assert jac_bytes >= 16 * size * 4  # K = 16 rows of float32
  assert gram_bytes < 0.4 * jac_bytes
