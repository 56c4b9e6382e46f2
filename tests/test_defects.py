"""Regression tests for the five defects of issue 9 (each failed before its fix)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import aggregators, data, methods, models
from mtl_jax.data.sampling import DeviceData
from mtl_jax.tasks import TaskSpec, make_taskset
from mtl_jax.train import make_optimizer, make_train_step

# --- 1. nash_mtl: scale-free warm start keyed by task id ------------------------------------


def _nash(k, t, **hp):
  """``nash_mtl`` with K and T filled in the way ``methods.get`` does."""
  accepted = aggregators._base._REGISTRY.accepted_kwargs("nash_mtl")
  filled = {"num_tasks": k, "max_tasks": t}
  agg = aggregators.get("nash_mtl", **{n: v for n, v in filled.items() if n in accepted}, **hp)
  return agg, jax.jit(agg.update)


def _residual(d, g):
  """max_i |α_i g_iᵀ d − 1| with α read back from d = αᵀg (g has full row rank)."""
  g = np.asarray(g, np.float64)
  alpha = np.linalg.lstsq(g.T, np.asarray(d, np.float64), rcond=None)[0]
  return np.max(np.abs(alpha * (g @ np.asarray(d, np.float64)) - 1.0))


@pytest.mark.parametrize("ratio", [30.0, 100.0, 1000.0])
def test_nash_mtl_recovers_after_a_gradient_scale_change(ratio):
  g = jnp.asarray(np.random.default_rng(0).normal(size=(3, 16)), jnp.float32)
  agg, update = _nash(3, 3)
  ids = jnp.arange(3)
  _, state = update(g, agg.init(jnp.zeros(16)), None, task_ids=ids)
  d, _ = update(g * ratio, state, None, task_ids=ids)
  np.testing.assert_allclose(jnp.linalg.norm(d), np.sqrt(3.0), rtol=1e-3)
  assert _residual(d, g * ratio) < 1e-3


def test_nash_mtl_warm_start_is_keyed_by_task_id():
  rng = np.random.default_rng(1)
  g_a = jnp.asarray(rng.normal(size=(2, 16)), jnp.float32)
  g_b = jnp.asarray(1000.0 * rng.normal(size=(2, 16)), jnp.float32)
  agg, update = _nash(2, 4)
  _, state = update(g_a, agg.init(jnp.zeros(16)), None, task_ids=jnp.array([0, 1]))
  # Tasks 2 and 3 were never solved: their step equals a cold start.
  d, _ = update(g_b, state, None, task_ids=jnp.array([2, 3]))
  cold, _ = _nash(2, 2)[0].update(g_b, _nash(2, 2)[0].init(jnp.zeros(16)), None)
  np.testing.assert_allclose(jnp.linalg.norm(d), np.sqrt(2.0), rtol=1e-4)
  chex.assert_trees_all_close(d, cold, rtol=1e-4, atol=1e-5)


def test_nash_mtl_update_weights_every_follows_task_ids():
  rng = np.random.default_rng(2)
  g1 = jnp.asarray(rng.normal(size=(2, 16)) * np.array([[1.0], [7.0]]), jnp.float32)
  g_new = jnp.asarray(rng.normal(size=(2, 16)), jnp.float32)
  agg, update = _nash(2, 4, update_weights_every=2)
  d1, state = update(g1, agg.init(jnp.zeros(16)), None, task_ids=jnp.array([0, 1]))
  # The same two tasks in the other row order: reusing their α gives the same update.
  d2, _ = update(g1[::-1], state, None, task_ids=jnp.array([1, 0]))
  chex.assert_trees_all_close(d2, d1, rtol=1e-5, atol=1e-6)
  # Tasks never solved before: solved now (no other task's α reused).
  d3, _ = update(g_new, state, None, task_ids=jnp.array([2, 3]))
  np.testing.assert_allclose(jnp.linalg.norm(d3), np.sqrt(2.0), rtol=1e-4)
  assert _residual(d3, g_new) < 1e-3


def test_nash_mtl_gets_max_tasks_from_the_train_step_even_from_a_config_placeholder():
  params = {"shared": jnp.zeros(3), "tasks": jnp.zeros((5, 3))}
  for given in ({}, {"max_tasks": None}):  # a config holds max_tasks=None
    m = methods.get("nash_mtl", num_tasks=5, tasks_per_batch=2, **given)
    assert m.init(params, 5).beta.shape == (5,)
  assert methods.get("nash_mtl", num_tasks=5, max_tasks=7).init(params, 5).beta.shape == (7,)


# --- 2. mgda_ub needs one shared input batch -------------------------------------------------


def test_mgda_ub_refuses_per_task_inputs():
  m = methods.get("mgda_ub", num_tasks=3)
  with pytest.raises(ValueError, match="needs a shared input batch"):
    methods.check_inputs(m, shared_inputs=False)
  methods.check_inputs(m, shared_inputs=True)  # fine
  methods.check_inputs(methods.get("mgda", num_tasks=3), shared_inputs=False)  # fine
  model = models.get("hard_sharing", num_tasks=3, output_size=2, width=8)
  with pytest.raises(ValueError, match="method 'mgda_ub' needs a shared input batch"):
    methods.check_model(m, model, shared_inputs=False)


def test_mgda_ub_per_task_inputs_fail_when_the_step_is_built():
  ts = data.get_taskset("mmoe_regression", num_tasks=3, dim=8, n_train=32, n_test=16)
  m = models.get("hard_sharing", num_tasks=3, output_size=ts.output_size, width=8)
  with pytest.raises(ValueError, match="needs a shared input batch"):
    make_train_step(
      m,
      DeviceData.from_taskset(ts),
      make_optimizer("adam", 1e-2),
      "mgda_ub",
      tasks_per_batch=3,
      batch_size=8,
      shared_inputs=False,
    )


# --- 3. imtl_g with a zero gradient row ------------------------------------------------------


@pytest.mark.parametrize("zero_row", [0, 1, 2])
def test_imtl_g_zero_row_keeps_equal_projections_on_the_others(zero_row):
  rng = np.random.default_rng(zero_row)
  g = rng.normal(size=(3, 8)) * np.array([[1.0], [5.0], [0.2]])
  g[zero_row] = 0.0
  agg = aggregators.get("imtl_g")
  d, _ = jax.jit(agg.update)(jnp.asarray(g, jnp.float32), agg.init(None), None)
  rest = np.delete(g, zero_row, axis=0)
  proj = (rest / np.linalg.norm(rest, axis=1, keepdims=True)) @ np.asarray(d, np.float64)
  assert np.linalg.norm(d) > 0.1 * np.min(np.linalg.norm(rest, axis=1))
  np.testing.assert_allclose(proj[0], proj[1], rtol=1e-4)
  # The same update as IMTL-G on the two non-zero rows alone.
  d_rest, _ = jax.jit(agg.update)(jnp.asarray(rest, jnp.float32), agg.init(None), None)
  chex.assert_trees_all_close(d, d_rest, rtol=1e-4, atol=1e-5)


# --- 4. gradvac once the target cosine reaches 1 -----------------------------------------------


def test_gradvac_targets_at_one_stay_bounded():
  rng = np.random.default_rng(0)
  g0 = rng.normal(size=10)
  same = jnp.asarray(np.stack([g0] * 3), jnp.float32)
  # Then one task moves by 1e-3 relative: cosines ≈ 1 − 1e-7, just under targets of 1.0.
  near = jnp.asarray(np.stack([g0, g0 + 1e-3 * rng.normal(size=10), g0]), jnp.float32)
  agg = aggregators.get("gradvac", shuffle=False)
  update = jax.jit(agg.update)
  state = agg.init(None)
  for step in range(40):
    g = same if step < 30 else near
    d, state = update(g, state, None)
    if step == 29:
      assert float(jnp.min(state.phi_hat[:3, :3] + jnp.eye(3))) == 1.0  # targets reached 1.0
    chex.assert_tree_all_finite(d)
    # Cosines above the largest target (0.9999) are left alone: the update is the sum.
    np.testing.assert_allclose(d, jnp.sum(g, axis=0), rtol=1e-5, err_msg=f"step {step}")


# --- 5. make_taskset(shared_inputs=True) checks that the inputs are shared ------------------


def _shared_set(x_train, x_test):
  specs = [TaskSpec(f"t{i}", "mse", 1) for i in range(len(x_train))]
  train = [(x, np.arange(len(x), dtype=np.float32)) for x in x_train]
  test = [(x, np.arange(len(x), dtype=np.float32)) for x in x_test]
  return make_taskset("toy", specs, train, test, shared_inputs=True)


def test_shared_inputs_must_be_identical():
  rng = np.random.default_rng(0)
  x, x_te = rng.normal(size=(6, 3)), rng.normal(size=(4, 3))
  ts = _shared_set([x, x, x], [x_te, x_te, x_te])
  assert ts.shared_inputs
  with pytest.raises(ValueError, match=r"task 't2' has 5 train examples and task 't0' has 6"):
    _shared_set([x, x, x[:5]], [x_te] * 3)
  other = x.copy()
  other[3, 1] += 1.0
  with pytest.raises(ValueError, match=r"task 't1'.*train inputs differ.*'t0'.*row 3"):
    _shared_set([x, other, other], [x_te] * 3)
  with pytest.raises(ValueError, match=r"task 't2'.*test inputs differ"):
    _shared_set([x] * 3, [x_te, x_te, x_te[::-1]])
