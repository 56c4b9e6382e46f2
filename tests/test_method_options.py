"""The options every aggregator takes: ``normalize`` (unit task gradients) and ``rep_grad``
(aggregate gradients w.r.t. the shared representation, LibMTL's ``rep_grad``)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import aggregators, configs, data, methods, models
from mtl_jax.data.sampling import DeviceData, sample_batch
from mtl_jax.gradients import Objective
from mtl_jax.train import make_chunk, make_optimizer, make_train_step

SHARED = data.get_taskset("digit_attributes", include_regression=True)
PER_TASK = data.get_taskset(
  "mmoe_regression", num_tasks=3, dim=8, n_train=64, n_test=32, num_sines=2, correlation=0.5
)


def test_normalized_divides_each_task_by_its_whole_norm():
  agg = aggregators.normalized(aggregators.get("sum"))
  # Task 0's gradient is ((3, 0), (4,)): norm 5; task 1's ((0, 0), (2,)): norm 2.
  g = {"a": jnp.array([[3.0, 0.0], [0.0, 0.0]]), "b": jnp.array([[4.0], [2.0]])}
  d, _ = agg.update(g, agg.init(None), None)
  chex.assert_trees_all_close(d, {"a": jnp.array([0.6, 0.0]), "b": jnp.array([0.8 + 1.0])})
  # A zero row stays zero (no division by 0).
  d, _ = agg.update(jnp.array([[0.0, 0.0], [0.0, 3.0]]), agg.init(None), None)
  chex.assert_trees_all_close(d, jnp.array([0.0, 1.0]))


def test_normalize_keeps_the_wrapped_extras():
  method = methods.get("famo", num_tasks=3, normalize=True)
  assert method.requires == frozenset()  # losses/task_ids still filled by the adapter
  assert "normalize" in configs.accepted("method", "famo")
  assert "rep_grad" in configs.defaults("method", "pcgrad")
  assert "normalize" not in configs.accepted("method", "equal")


def _setup(method, taskset=SHARED, model="hard_sharing", **kwargs):
  m = models.get(model, num_tasks=taskset.num_tasks, output_size=taskset.output_size, width=16)
  d = DeviceData.from_taskset(taskset)
  init, step = make_train_step(
    m,
    d,
    make_optimizer("sgd", 1e-2),
    method,
    kwargs,
    tasks_per_batch=taskset.num_tasks,
    batch_size=8,
    shared_inputs=taskset.shared_inputs,
  )
  params = m.init(jax.random.PRNGKey(0), jnp.asarray(taskset.x_train[0, :2]))
  return m, d, init(jax.random.PRNGKey(1), params)


def _shared_grads(method, **kwargs):
  m, d, state = _setup(method, **kwargs)
  meth = methods.get(
    method,
    num_tasks=m.num_tasks,
    rep_template=lambda p: jnp.zeros((8, 16)),
    **kwargs,
  )
  obj = Objective(m, d.kind, d.out_mask, True)
  batch = sample_batch(jax.random.PRNGKey(2), d, m.num_tasks, 8, True)
  extras = methods.compute_extras(meth, obj, state.params, batch, jax.random.PRNGKey(3), 0)
  g, *_ = meth.grads(obj, state.params, meth.init(state.params, m.num_tasks), batch, extras)
  return g


def test_rep_grad_sum_is_the_plain_sum():
  # Chain rule: Σ_k ∂L_k/∂θ^sh = J_Zᵀ Σ_k ∂L_k/∂Z, so the linear aggregators agree exactly.
  for name in ("sum", "mean"):
    chex.assert_trees_all_close(
      _shared_grads(name, rep_grad=True), _shared_grads(name), rtol=1e-5, atol=1e-7
    )


def test_rep_grad_mgda_is_mgda_ub():
  # MGDA on ∂L_k/∂Z gives α; J_Zᵀ Σ α_k ∂L_k/∂Z = Σ α_k ∇_θ L_k: Sener & Koltun's MGDA-UB.
  chex.assert_trees_all_close(
    _shared_grads("mgda", rep_grad=True), _shared_grads("mgda_ub"), rtol=1e-4, atol=1e-6
  )


def test_rep_grad_refuses_per_task_inputs_and_unshared_models():
  with pytest.raises(ValueError, match="shared input batch"):
    _setup("pcgrad", taskset=PER_TASK, rep_grad=True)
  with pytest.raises(ValueError, match="representation"):
    _setup("pcgrad", model="independent", rep_grad=True)
  with pytest.raises(ValueError, match="rep_template"):
    methods.get("pcgrad", num_tasks=3, rep_grad=True)


@pytest.mark.parametrize("name", aggregators.names())
def test_every_aggregator_trains_with_rep_grad_and_normalize(name):
  # State sized by Z (not θ^sh) and unit-norm ∂L_k/∂Z rows, through the real train step.
  m = models.get("hard_sharing", num_tasks=SHARED.num_tasks, output_size=SHARED.output_size)
  init, train_step = make_train_step(
    m,
    DeviceData.from_taskset(SHARED),
    make_optimizer("adam", 3e-3),
    name,
    {"rep_grad": True, "normalize": True},
    tasks_per_batch=SHARED.num_tasks,
    batch_size=32,
    shared_inputs=True,
  )
  params = m.init(jax.random.PRNGKey(0), jnp.asarray(SHARED.x_train[0, :2]))
  run = make_chunk(train_step, 25)
  state, first = run(init(jax.random.PRNGKey(1), params))
  state, last = run(state)
  chex.assert_tree_all_finite(state.params)
  assert np.asarray(last["loss_sum"]).sum() < np.asarray(first["loss_sum"]).sum(), name


def test_implied_weights_recover_a_known_combination():
  # Nash-MTL's α solves (GGᵀ)α = 1/α; with GGᵀ = [[1, 1, 0], [1, 2, 0], [0, 0, 4]] the third
  # is 1/2 and the recovered α must satisfy the bargaining equations.
  g = jnp.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
  agg = aggregators.get("nash_mtl", max_tasks=3)
  d, _ = agg.update(g, agg.init(jnp.zeros(3)), None)
  alpha = aggregators.implied_weights(g, d)
  np.testing.assert_allclose((g @ g.T) @ alpha, 1.0 / alpha, rtol=1e-4)
  np.testing.assert_allclose(alpha[2], 0.5, rtol=1e-5)
  # A pytree update and rows: MGDA's min-norm point of (1, 0) and (0, 2) is α = (0.8, 0.2).
  rows = {"a": jnp.array([[1.0], [0.0]]), "b": jnp.array([[0.0], [2.0]])}
  d, _ = aggregators.get("mgda").update(rows, None, None)
  np.testing.assert_allclose(aggregators.implied_weights(rows, d), [0.8, 0.2], rtol=1e-5)


def _step_grads(method, **kwargs):
  m, d, state = _setup(method, taskset=PER_TASK, **kwargs)
  meth = methods.get(method, num_tasks=m.num_tasks, **kwargs)
  obj = Objective(m, d.kind, d.out_mask, False)
  batch = sample_batch(jax.random.PRNGKey(2), d, m.num_tasks, 8, False)
  g, _, w, _ = meth.grads(obj, state.params, meth.init(state.params, m.num_tasks), batch, {})
  return g, w


def test_weigh_heads_scales_each_head_by_its_weight():
  g_plain, w_plain = _step_grads("mgda")
  g_weighed, w = _step_grads("mgda", weigh_heads=True)
  np.testing.assert_array_equal(w_plain, 1.0)
  np.testing.assert_allclose(jnp.sum(w), 1.0, rtol=1e-4)  # MGDA's weights are on the simplex
  chex.assert_trees_all_close(g_weighed["shared"], g_plain["shared"])
  expect = jax.tree.map(lambda l: l * w.reshape((-1,) + (1,) * (l.ndim - 1)), g_plain["tasks"])
  chex.assert_trees_all_close(g_weighed["tasks"], expect, rtol=1e-6)
  # sum's weights are all 1: weighing the heads changes nothing.
  g_sum, w_sum = _step_grads("sum", weigh_heads=True)
  np.testing.assert_allclose(w_sum, 1.0, rtol=1e-4)
  chex.assert_trees_all_close(g_sum, _step_grads("sum")[0], rtol=1e-5, atol=1e-7)
