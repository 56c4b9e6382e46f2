"""Missing labels: NaN rows of y, masked losses, methods run on the present tasks only."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import aggregators, methods, models, weighting
from mtl_jax.data.sampling import DeviceData, TaskBatch
from mtl_jax.gradients import Objective, one_task_loss, per_task_grads, present_tasks
from mtl_jax.grouping.affinity import check_all_labelled
from mtl_jax.metrics import task_metrics
from mtl_jax.present import run_on_present
from mtl_jax.tasks import TaskSpec, make_taskset
from mtl_jax.train import make_chunk, make_optimizer, make_train_step

T, K, P = 4, 2, 5  # the registry-wide tests: K = 2 rows of which one is absent
# Static weights are per task id (T of them); everything else uses its defaults.
WEIGHTING_KWARGS = {"static": {"weights": [1.0, 2.0, 3.0, 4.0]}}
TRAIN_KWARGS = {"static": {"weights": [1.0, 2.0, 3.0]}}  # the training smoke's T = 3


def _taskset(rng, n=12, labelled=True):
  x = rng.normal(size=(n, 3)).astype(np.float32)
  specs = [TaskSpec("cls", "softmax_ce", 3), TaskSpec("bin", "sigmoid_ce", 2)]
  specs.append(TaskSpec("reg", "mse", 1))
  ys = [rng.integers(0, 3, n), rng.integers(0, 2, (n, 2)), rng.normal(size=(n, 1))]
  masks = [rng.random(n) < 0.6 for _ in specs]
  for m in masks:  # 5 of the first 8 rows labelled (the batches below), row 0 among them
    m[:8] = np.concatenate([[True], rng.permutation(7) < 4])
  split = [(x, y, m) if labelled else (x, y) for y, m in zip(ys, masks)]
  return make_taskset("toy", specs, split, split, shared_inputs=True), ys, masks


def test_make_taskset_stores_missing_labels_as_nan_rows():
  rng = np.random.default_rng(0)
  ts, ys, masks = _taskset(rng)
  assert ts.has_missing_labels
  np.testing.assert_array_equal(ts.labelled("train"), np.stack(masks))
  np.testing.assert_array_equal(ts.y_train[0, masks[0], 0], ys[0][masks[0]])
  assert np.isnan(ts.y_train[~np.stack(masks)]).all()
  # Regression labels are standardised on the labelled rows only.
  reg = ts.y_train[2, masks[2], 0]
  np.testing.assert_allclose([reg.mean(), reg.std()], [0.0, 1.0], atol=1e-5)
  assert not _taskset(rng, labelled=False)[0].has_missing_labels


def test_make_taskset_rejects_bad_masks():
  x, y = np.zeros((4, 2), np.float32), np.array([0, 1, 0, 1])
  spec = [TaskSpec("a", "softmax_ce", 2)]
  with pytest.raises(ValueError, match="task 'a' .train split.: no example is labelled"):
    make_taskset("s", spec, [(x, y, np.zeros(4, bool))], [(x, y)])
  with pytest.raises(ValueError, match=r"task 'a' \(test split\): labelled must be a boolean"):
    make_taskset("s", spec, [(x, y)], [(x, y, np.ones(3, bool))])
  # Unlabelled rows may hold anything (here an out-of-range class and a NaN).
  y_bad = np.array([0.0, np.nan, 7.0, 1.0])
  ts = make_taskset("s", spec, [(x, y_bad, np.array([True, False, False, True]))], [(x, y)])
  np.testing.assert_array_equal(ts.labelled()[0], [True, False, False, True])


def test_metrics_count_only_labelled_test_examples():
  out = jnp.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 0.0]])
  y = jnp.array([[0.0], [1.0], [jnp.nan], [1.0]])  # row 2 unlabelled, row 3 padding
  args = (jnp.asarray(0), jnp.array([True, True]), 3, jnp.zeros(1), jnp.ones(1))
  m = jax.jit(task_metrics)(out, y, *args)
  assert m["accuracy"] == 1.0  # rows 0 and 1 only (row 2 would be wrong)
  np.testing.assert_allclose(m["loss"], np.log1p(np.exp(-2.0)), rtol=1e-6)


def test_task_grouping_refuses_missing_labels():
  ts, _, _ = _taskset(np.random.default_rng(0))
  with pytest.raises(ValueError, match="task set 'toy' has missing labels"):
    check_all_labelled(ts)
  check_all_labelled(_taskset(np.random.default_rng(0), labelled=False)[0])


def _setup(seed=0):
  ts, _, _ = _taskset(np.random.default_rng(seed))
  model = models.get("hard_sharing", num_tasks=3, output_size=ts.output_size, width=8)
  params = jax.jit(model.init)(jax.random.PRNGKey(seed), jnp.zeros((1, 3)))
  obj = Objective(model, jnp.asarray(ts.kind_ids()), jnp.asarray(ts.output_mask()), True, True)
  x = jnp.asarray(ts.x_train[:, :8])
  batch = TaskBatch(x, jnp.asarray(ts.y_train[:, :8]), jnp.arange(3))
  return ts, model, params, obj, batch


def _row(tree, k):
  return jax.tree.map(lambda a: a[k], tree)


def test_masked_gradient_equals_gradient_on_labelled_subset():
  ts, _, params, obj, batch = _setup()
  grads_of = jax.jit(lambda p, b: per_task_grads(obj, p, b))
  losses, g_sh, g_task = grads_of(params, batch)
  plain = obj._replace(missing_labels=False)
  loss_fn = jax.jit(
    jax.value_and_grad(lambda s, p, k, x, y: one_task_loss(plain, s, p, k, x, y), (0, 1))
  )
  for k in range(3):
    keep = np.flatnonzero(ts.labelled()[k, :8])
    x, y = batch.x[k, keep], batch.y[k, keep]  # the labelled examples only, no mask
    loss_k, (gs, gt) = loss_fn(params["shared"], _row(params["tasks"], k), k, x, y)
    np.testing.assert_allclose(losses[k], loss_k, rtol=1e-6)
    chex.assert_trees_all_close(_row(g_sh, k), gs, rtol=1e-5, atol=1e-7)
    chex.assert_trees_all_close(_row(g_task, k), gt, rtol=1e-5, atol=1e-7)
  # A task with no labelled example in the batch: loss 0 and an exactly zero gradient.
  batch = batch._replace(y=batch.y.at[1].set(jnp.nan))
  np.testing.assert_array_equal(present_tasks(obj, batch), [True, False, True])
  losses, g_sh, g_task = grads_of(params, batch)
  assert losses[1] == 0.0
  for g in jax.tree.leaves((g_sh, g_task)):
    assert jnp.all(g[1] == 0) and jnp.all(jnp.isfinite(g))


def _method_grads(name, obj, params, batch, **kwargs):
  method = methods.get(name, num_tasks=3, **kwargs)
  state = method.init(params, 3)
  return jax.jit(lambda p, s, b: method.grads(obj, p, s, b, {}))(params, state, batch)


@pytest.mark.parametrize("name", ["equal", "mgda"])
def test_task_without_labels_in_batch_has_zero_weight(name):
  _, _, params, obj, batch = _setup()
  batch = batch._replace(y=batch.y.at[1].set(jnp.nan))  # task 1: nothing labelled
  grads, _, w, _ = _method_grads(name, obj, params, batch)
  assert w[1] == 0.0 and w[0] > 0 and w[2] > 0
  assert all(jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads))
  assert all(jnp.all(g[1] == 0) for g in jax.tree.leaves(grads["tasks"]))
  if name == "mgda":  # the Jacobian-free Gramian path gives the same step
    on_gramian = _method_grads(name, obj, params, batch, gramian="always")
    _close(on_gramian[0], grads)


def test_run_on_present_keeps_batch_order_and_scatters_back():
  def fn(rows):  # order-sensitive: weights 1, 2, ... by position among the present rows
    pos = jnp.arange(1.0, rows["id"].shape[0] + 1)
    return (jnp.sum(pos * rows["id"]), rows["id"].shape[0]), pos * 10

  present = jnp.array([False, True, False, True, True])
  rows = {"id": jnp.arange(5.0)}
  none = lambda shapes: (jnp.zeros((), shapes[0].dtype), -1)
  run = jax.jit(lambda p: run_on_present(fn, p, rows, none))
  (total, m), per_row = run(present)
  assert total == 1 * 1 + 2 * 3 + 3 * 4 and m == 3  # rows 1, 3, 4 in batch order
  np.testing.assert_array_equal(per_row, [0, 10, 0, 20, 30])
  (total, m), per_row = run(jnp.zeros(5, bool))
  assert total == 0 and m == -1 and not per_row.any()


def _rows(seed):
  rng = np.random.default_rng(seed)
  g = {"a": rng.normal(size=(K, P)), "b": rng.normal(size=(K, 2, 2))}
  g = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), g)
  extras = {
    "losses": jnp.asarray(rng.uniform(0.2, 2.0, K), jnp.float32),
    "task_ids": jnp.asarray(rng.permutation(T)[:K]),
    "rng": jax.random.PRNGKey(seed),
    "step": jnp.asarray(seed),
    "grad_norms": jnp.asarray(rng.uniform(0.5, 2.0, K), jnp.float32),
    "rep_grads": jnp.asarray(rng.normal(size=(K, 4, 3)), jnp.float32),
    "shared_grads": jnp.asarray(rng.normal(size=(K, P)), jnp.float32),
  }
  return g, extras


def _subset(tree, keep):
  return jax.tree.map(lambda a: a[keep], tree)


def _close(a, b):
  chex.assert_trees_all_close(a, b, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("name", aggregators.names())
def test_aggregator_on_present_rows_equals_it_on_the_present_subset(name):
  registry = aggregators._base._REGISTRY
  kwargs = {"max_tasks": T} if "max_tasks" in registry.accepted_kwargs(name) else {}
  agg = aggregators.get(name, **kwargs)
  declared = methods.declared_extras(agg.update) | {"rng", "step"}
  params = {"a": jnp.zeros(P), "b": jnp.zeros((2, 2))}

  def pick(extras):
    return {k: v for k, v in extras.items() if k in declared}

  run = jax.jit(lambda *a: methods.aggregate_present(agg, *a))
  g1, e1 = _rows(1)
  _, state = run(jnp.ones(K, bool), g1, agg.init(params), params, pick(e1))
  g2, e2 = _rows(2)
  present = jnp.array([False, True])  # the present row moves to the front
  keep = np.flatnonzero(present)
  got = run(present, jax.tree.map(lambda a: a * present.reshape((K,) + (1,) * (a.ndim - 1)), g2),
            state, params, pick(e2))  # fmt: skip
  others = {k: v for k, v in pick(e2).items() if k in ("rng", "step")}
  per_task = _subset({k: v for k, v in pick(e2).items() if k not in others}, keep)
  want = jax.jit(agg.update)(_subset(g2, keep), state, params, **per_task, **others)
  _close(got, want)
  update, same = run(jnp.zeros(K, bool), g2, state, params, pick(e2))
  assert all(jnp.all(u == 0) for u in jax.tree.leaves(update))
  _close(same, state)


@pytest.mark.parametrize("name", weighting.names())
def test_weighting_on_present_tasks_equals_it_on_the_present_subset(name):
  w = weighting.get(name, **WEIGHTING_KWARGS.get(name, {}))
  extras = lambda e: {k: e[k] for k in ("rng", "step", "grad_norms", "shared_grads")}
  run = jax.jit(lambda p, l, s, i, e: methods.weigh_present(w, p, l, s, i, e))
  _, e1 = _rows(1)
  _, state = run(jnp.ones(K, bool), e1["losses"], w.init(T), e1["task_ids"], extras(e1))
  _, e2 = _rows(2)
  present = jnp.array([False, True])
  keep = np.flatnonzero(present)
  losses = e2["losses"] * present
  got_w, got_state = run(present, losses, state, e2["task_ids"], extras(e2))
  sub = {k: (v[keep] if k in ("grad_norms", "shared_grads") else v) for k, v in extras(e2).items()}
  want_w, want_state = jax.jit(w.update)(e2["losses"][keep], state, e2["task_ids"][keep], **sub)
  assert got_w[0] == 0.0
  _close((got_w[keep], got_state), (want_w, want_state))


def _pairs():
  """(model, method) pairs covering every model and every method once at least: each method
  with the next model (in turn) that can run it; models left over run ``equal``."""
  names, pairs = models.names(), []
  for i, method in enumerate(methods.names()):
    m = methods.get(method, num_tasks=3, **TRAIN_KWARGS.get(method, {}))
    for j in range(len(names)):
      model = models.get(names[(i + j) % len(names)], num_tasks=3, output_size=3, width=4)
      try:
        methods.check_model(m, model, shared_inputs=True)
      except ValueError:
        continue
      pairs.append((model.name, method))
      break
  used = {p[0] for p in pairs}
  return pairs + [(name, "equal") for name in names if name not in used]


def _train_step(model_name, method, **kwargs):
  """``(make_state, step)`` of a tiny missing-label run (K = T = 3, 2 examples a step)."""
  ts, _, _ = _taskset(np.random.default_rng(3))
  data = DeviceData.from_taskset(ts)
  model = models.get(model_name, num_tasks=3, output_size=ts.output_size, width=4, depth=1)
  init, step = make_train_step(
    model, data, make_optimizer("adam", 1e-2), method, dict(TRAIN_KWARGS.get(method, {}), **kwargs),
    tasks_per_batch=3, batch_size=2, shared_inputs=True,
  )  # fmt: skip
  x = jnp.asarray(ts.x_train[0, :2])
  return lambda: init(jax.random.PRNGKey(1), model.init(jax.random.PRNGKey(0), x)), step


@pytest.mark.parametrize(("model_name", "method"), _pairs())
def test_every_model_and_method_builds_a_missing_label_step(model_name, method):
  """Traced, not compiled (cheap): the K + 1 branches of every method agree in type."""
  make_state, step = _train_step(model_name, method)
  state = jax.eval_shape(make_state)
  new_state, m = jax.eval_shape(lambda: step(make_state()))
  chex.assert_trees_all_equal_shapes_and_dtypes(new_state, state)
  assert m["loss_count"].shape == (3,)


@pytest.mark.parametrize(
  ("model_name", "method", "kwargs"),
  [("hard_sharing", "uncertainty", {}), ("split", "famo", {"rep_grad": True, "weigh_heads": True})],
)
def test_trains_with_missing_labels(model_name, method, kwargs):
  make_state, step = _train_step(model_name, method, **kwargs)
  state, m = make_chunk(step, 6)(jax.jit(make_state)())
  chex.assert_tree_all_finite((state.params, m["loss"]))
  # With 2 examples a step, tasks are often absent: never counted, never weighted.
  assert m["loss_count"].min() < 6
  np.testing.assert_array_equal(m["weight_sum"] > 0, m["loss_count"] > 0)
