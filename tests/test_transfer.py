"""Transfer and fine-tuning (mtl_jax.transfer): the practices' mechanics, sources, splits."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mtl_jax import models
from mtl_jax.tasks import TaskSpec, make_taskset
from mtl_jax.transfer import optim, runner, splits
from mtl_jax.transfer import source as source_lib
from mtl_jax.transfer.arms import frozen_levels


def _taskset(dim=6, classes=3, n=60, tasks=1, seed=0):
  rng = np.random.default_rng(seed)
  specs, train, test = [], [], []
  for t in range(tasks):
    w = rng.normal(size=(dim, classes))
    x = rng.normal(size=(n, dim)).astype(np.float32)
    y = np.argmax(x @ w, 1)
    y[:classes] = np.arange(classes)  # every class present
    specs.append(TaskSpec(f"t{t}", "softmax_ce", classes))
    train.append((x[: n // 2], y[: n // 2]))
    test.append((x[n // 2 :], y[n // 2 :]))
  return make_taskset("toy", specs, train, test)


def _model(ts, depth=2, num_tasks=1):
  return models.get(
    "hard_sharing",
    num_tasks=num_tasks,
    output_size=ts.output_size,
    trunk="mlp",
    width=5,
    depth=depth,
  )


def _init(model, ts, r=1, seed=0):
  keys = jax.random.split(jax.random.PRNGKey(seed), r)
  return source_lib.init_params(model, ts, keys)


def _finetune(ts, model, params, frozen=frozenset(), hp=None, steps=12, r=1):
  one = jax.tree.map(lambda p: p[0], params)
  ft = runner.Finetuner(model, one, frozen, num_steps=steps, batch_size=8)
  n_levels = optim.num_levels(model)
  hp = hp or optim.hparams(1e-2, 1.0, n_levels)
  target = runner.Target.from_taskset(ts)
  n = int(ts.n_train[0])
  keys = jax.random.split(jax.random.PRNGKey(1), r)
  runs = runner.make_runs(params, [np.arange(n)] * r, [hp] * r, keys, [np.arange(5)] * r)
  return ft, ft(runs, target)


def _by_level(model, params):
  one = jax.tree.map(lambda p: p[0], params)
  lv = jax.tree.leaves(optim.levels(model, one))
  return list(zip(lv, jax.tree.leaves(params)))


def test_levels_count_from_the_top():
  ts = _taskset()
  model = _model(ts, depth=3)
  params = jax.tree.map(lambda p: p[0], _init(model, ts))
  lv = optim.levels(model, params)
  assert optim.num_levels(model) == 4
  assert lv["tasks"]["head"]["Dense_0"]["kernel"] == 0
  assert lv["shared"]["layer_2"]["Dense_0"]["kernel"] == 1
  assert lv["shared"]["layer_0"]["Dense_0"]["bias"] == 3
  np.testing.assert_array_equal(optim.schedule(4, freeze_layers=1), [0, 0, 0, optim.NEVER])
  np.testing.assert_array_equal(optim.schedule(4, unfreeze_every=5), [0, 5, 10, 15])
  with pytest.raises(ValueError, match="freeze_layers"):
    optim.schedule(4, freeze_layers=4)


def test_decayed_rates_are_rate_times_decay_to_the_depth():
  ts = _taskset()
  model = _model(ts, depth=3)
  params = jax.tree.map(lambda p: p[0], _init(model, ts))
  lv = optim.levels(model, params)
  lr, decay = 0.1, 0.5
  hp = optim.hparams(lr, decay, 4)
  opt = optim.optimizer(optim.labels(lv, frozenset()), hp, 4, base="sgd")
  ones = jax.tree.map(jnp.ones_like, params)
  updates, _ = opt.update(ones, opt.init(params), params)
  for d, u in zip(jax.tree.leaves(lv), jax.tree.leaves(updates)):
    np.testing.assert_allclose(np.asarray(u), -lr * decay**d, rtol=1e-6)
  np.testing.assert_allclose(optim.level_rates(hp, 4), [0.1, 0.05, 0.025, 0.0125], rtol=1e-6)


def test_frozen_leaves_bit_identical_no_state_no_gradient():
  ts = _taskset()
  model = _model(ts, depth=2)
  params = _init(model, ts)
  frozen = frozen_levels(3, 2)  # both trunk layers
  assert frozen == {1, 2}
  _, out = _finetune(ts, model, params, frozen, optim.hparams(5e-2, 1.0, 3, freeze_layers=2))
  for (d, after), (_, before) in zip(_by_level(model, out["params"]), _by_level(model, params)):
    same = np.array_equal(np.asarray(after), np.asarray(before))
    assert same == (d in frozen), d
  # The same freezing through the traced schedule (no static labels) keeps them identical too.
  hp = optim.hparams(5e-2, 1.0, 3, freeze_layers=2)
  _, out2 = _finetune(ts, model, params, frozenset(), hp)
  for (d, after), (_, before) in zip(_by_level(model, out2["params"]), _by_level(model, params)):
    assert np.array_equal(np.asarray(after), np.asarray(before)) == (d in frozen)
  # No optimiser state for statically frozen leaves: only the head's Adam moments remain.
  one = jax.tree.map(lambda p: p[0], params)
  lv = optim.levels(model, one)
  opt = optim.optimizer(optim.labels(lv, frozen), hp, 3)
  state_size = sum(x.size for x in jax.tree.leaves(opt.init(one)))
  head_size = sum(x.size for x in jax.tree.leaves(one["tasks"]))
  assert state_size == 2 * head_size + 2  # mu, nu + Adam's count + the gate's count
  # No gradient is computed for them: the backward pass has fewer matrix products.
  x, y = jnp.asarray(ts.x_train[0, :4]), jnp.asarray(ts.y_train[0, :4])
  target = runner.Target.from_taskset(ts)

  def n_dots(fz):
    ft = runner.Finetuner(model, one, fz, num_steps=1, batch_size=4)
    fn = jax.grad(lambda p: ft._loss(p, hp, 0, x, y, target))
    return str(jax.make_jaxpr(fn)(one)).count("dot_general")

  assert n_dots(frozen) < n_dots(frozenset())


def test_gradual_unfreezing_opens_levels_on_schedule_without_retracing():
  ts = _taskset()
  model = _model(ts, depth=2)
  one = jax.tree.map(lambda p: p[0], _init(model, ts))
  lv = optim.levels(model, one)
  labels = optim.labels(lv, frozenset())
  traces = []

  @jax.jit
  def step(params, state, hp):
    traces.append(1)
    opt = optim.optimizer(labels, hp, 3, base="sgd")
    ones = jax.tree.map(jnp.ones_like, params)
    updates, state = opt.update(ones, state, params)
    return optax.apply_updates(params, updates), state, updates

  every = 3
  hp = optim.hparams(0.1, 1.0, 3, unfreeze_every=every)
  state = optim.optimizer(labels, hp, 3, base="sgd").init(one)
  params = one
  for t in range(9):
    params, state, updates = step(params, state, hp)
    for d, u in zip(jax.tree.leaves(lv), jax.tree.leaves(updates)):
      assert bool(np.any(np.asarray(u) != 0)) == (t >= d * every), (t, d)
  assert len(traces) == 1
  # A different schedule is data: same program.
  step(params, state, optim.hparams(0.1, 0.5, 3, unfreeze_every=1))
  assert len(traces) == 1
  # Adam's bias correction starts when a level opens: its count is steps since opening.
  hp = optim.hparams(0.1, 1.0, 3, unfreeze_every=every)
  opt = optim.optimizer(labels, hp, 3)
  s = opt.init(one)
  for _ in range(7):
    _, s = opt.update(jax.tree.map(jnp.ones_like, one), s, one)
  counts = {d: int(s.inner_states[f"level_{d}"].inner_state.inner[0].count) for d in range(3)}
  assert counts == {0: 7, 1: 4, 2: 1}


def test_finetuner_does_not_retrace_across_schedules():
  ts = _taskset()
  model = _model(ts)
  params = _init(model, ts, r=2)
  ft, _ = _finetune(ts, model, params, r=2)
  target = runner.Target.from_taskset(ts)
  hps = [optim.hparams(1e-3, 0.5, 3, unfreeze_every=4), optim.hparams(1e-2, 1.0, 3, 1)]
  keys = jax.random.split(jax.random.PRNGKey(3), 2)
  n = int(ts.n_train[0])
  runs = runner.make_runs(params, [np.arange(n)] * 2, hps, keys, [np.arange(5)] * 2)
  ft(runs, target)
  assert ft.traces == 1


def _fake_source(ts, num_tasks=2, seeds=2):
  model = _model(ts, num_tasks=num_tasks)
  params = _init(model, ts, r=seeds, seed=7)
  config = {"model": "hard_sharing", "model_kwargs": {"trunk": "mlp", "width": 5, "depth": 2}}
  return source_lib.Source("/fake", 1, config, jax.tree.map(np.asarray, params))


def test_head_reinit_vs_keep():
  ts = _taskset()
  src = _fake_source(ts)
  model = source_lib.target_model(src.config, ts)
  fresh = _init(model, ts, r=3, seed=1)
  seeds = np.array([0, 1, 2])
  for keep in (False, True):
    got = source_lib.transplant(src, model, fresh, seeds, keep_head=keep, source_row=1)
    s = seeds % 2
    for layer in ("layer_0", "layer_1"):
      np.testing.assert_array_equal(
        got["shared"][layer]["Dense_0"]["kernel"],
        src.params["shared"][layer]["Dense_0"]["kernel"][s],
      )
    head = got["tasks"]["head"]["Dense_0"]["kernel"]
    want = (
      src.params["tasks"]["head"]["Dense_0"]["kernel"][s, 1][:, None]
      if keep
      else fresh["tasks"]["head"]["Dense_0"]["kernel"]
    )
    np.testing.assert_array_equal(head, want)


def test_linear_probe_trains_only_the_head():
  ts = _taskset()
  model = _model(ts)
  params = _init(model, ts)
  frozen = frozen_levels(3, 2)
  ft, out = _finetune(ts, model, params, frozen, optim.hparams(1e-2, 1.0, 3, freeze_layers=2))
  assert set(jax.tree.leaves(ft.labels["shared"])) == {optim.FROZEN}
  assert set(jax.tree.leaves(ft.labels["tasks"])) == {"level_0"}
  for a, b in zip(jax.tree.leaves(out["params"]["shared"]), jax.tree.leaves(params["shared"])):
    assert np.array_equal(a, b)
  for a, b in zip(jax.tree.leaves(out["params"]["tasks"]), jax.tree.leaves(params["tasks"])):
    assert not np.array_equal(a, b)


def test_kfold_validates_every_row_once():
  rows = np.arange(3, 40)
  folds = splits.kfold(rows, 5, np.random.default_rng(0))
  val = np.concatenate([v for _, v in folds])
  np.testing.assert_array_equal(np.sort(val), rows)
  for tr, va in folds:
    assert not set(tr) & set(va)
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, va])), rows)
  with pytest.raises(ValueError, match="cv.folds"):
    splits.kfold(rows, 1, np.random.default_rng(0))


def test_class_balanced_subsets():
  y = np.array([[0], [1], [1], [2], [2], [2], [0], [1]], np.float32)
  assert splits.max_per_class(y, "softmax_ce") == 2
  rows = splits.subset(y, "softmax_ce", 2, np.random.default_rng(0))
  assert np.bincount(y[rows, 0].astype(int)).tolist() == [2, 2, 2]
  assert len(splits.subset(y, "mse", 5, np.random.default_rng(0))) == 5


def test_missing_checkpoint_error_names_path(tmp_path):
  missing = tmp_path / "no_such_run"
  with pytest.raises(source_lib.SourceError, match=str(missing)):
    source_lib.load_source(str(missing))
  empty = tmp_path / "empty"
  (empty / "checkpoints").mkdir(parents=True)
  with pytest.raises(source_lib.SourceError, match="no checkpoint in .*empty/checkpoints"):
    source_lib.load_source(str(empty))


def test_shape_mismatch_error_names_both_shapes():
  src = _fake_source(_taskset(dim=6))
  target = _taskset(dim=9)
  model = source_lib.target_model(src.config, target)
  with pytest.raises(
    source_lib.SourceError, match=r"checkpoint \(6, 5\), target model \(9, 5\)"
  ) as e:
    source_lib.check_fits(src, model, target, keep_head=False, source_row=0)
  assert "(9,)" in str(e.value)  # the target's input shape
  source_lib.check_fits(src, source_lib.target_model(src.config, _taskset()), _taskset(), False, 1)


def test_select_tasks_keeps_rows():
  ts = _taskset(tasks=3)
  sub = splits.select_tasks(ts, [2, 0])
  assert sub.names == ["t2", "t0"]
  np.testing.assert_array_equal(sub.x_train[0], ts.x_train[2])
  with pytest.raises(ValueError, match="transfer.target_task"):
    splits.task_index(ts, "nope", "transfer.target_task")


@pytest.mark.parametrize("name", ["mmoe", "split"])
def test_other_architectures_transfer(name):
  ts = _taskset()
  kwargs = {"mmoe": {"width": 4, "depth": 1}, "split": {"width": 5, "depth": 2, "num_shared": 1}}
  config = {"model": name, "model_kwargs": kwargs[name]}
  src_model = models.get(name, num_tasks=2, output_size=ts.output_size, **kwargs[name])
  params = jax.tree.map(np.asarray, _init(src_model, ts, r=2, seed=3))
  src = source_lib.Source("/fake", 1, config, params)
  model = source_lib.target_model(config, ts)
  source_lib.check_fits(src, model, ts, keep_head=False, source_row=1)
  fresh = _init(model, ts, r=2)
  got = source_lib.transplant(src, model, fresh, np.array([0, 1]), keep_head=False, source_row=1)
  for a, b in zip(jax.tree.leaves(got["shared"]), jax.tree.leaves(src.params["shared"])):
    np.testing.assert_array_equal(a, b)
  n_levels = optim.num_levels(model)
  frozen = frozen_levels(n_levels, n_levels - 1)  # a linear probe
  _, out = _finetune(ts, model, got, frozen, optim.hparams(1e-2, 1.0, n_levels, n_levels - 1), r=2)
  for a, b in zip(jax.tree.leaves(out["params"]["shared"]), jax.tree.leaves(got["shared"])):
    assert np.array_equal(a, b)
  assert np.all(np.isfinite(out["accuracy"]))
