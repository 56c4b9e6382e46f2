"""``config.resample_data``: with N seeds, seed s also trains on its own task set.

The property: N seeds with ``resample_data`` in one program equal N single-seed runs, run s
built with ``seed = config.seed + s`` on the task set of data seed ``taskset_kwargs.seed + s``
(to float tolerance); with ``resample_data=False`` every seed trains on the one data set
(and the data carries no seed axis). Evaluation, the paired baseline, summary.json,
resume, the NaN guard and a mesh keep working; a task set without a seed is refused first.
"""

import json
import os

import chex
import jax
import ml_collections
import numpy as np
import pytest
from virtual_devices import run_script

from experiments.configs import synthetic
from mtl_jax import build, configs, data, experiment, loop, validation
from mtl_jax.data.sampling import DeviceData
from mtl_jax.data.synthetic import mmoe_regression
from mtl_jax.tasks import TaskSet, TaskSpec, make_taskset

SMALL = {"num_tasks": 3, "dim": 8, "n_train": 40, "n_test": 32}


def _config(**over) -> ml_collections.ConfigDict:
  config = synthetic.get_config("smoke")
  config.taskset_kwargs.update({**SMALL, "seed": 11})
  config.model_kwargs.width = 16
  config.seed = 5
  config.num_steps, config.log_every, config.checkpoint_every = 6, 3, 3
  config.batch_size = 8
  config.num_seeds, config.resample_data, config.baseline = 3, True, ""
  for key, value in over.items():
    config[key] = value
  return config


def _alone(config: ml_collections.ConfigDict, s: int) -> ml_collections.ConfigDict:
  """The single-seed config of seed s: seed + s on data seed + s."""
  one = ml_collections.ConfigDict(config.to_dict())
  one.num_seeds, one.seed = 1, config.seed + s
  one.taskset_kwargs.seed = config.taskset_kwargs.seed + s
  return one


def _varying(seed: int = 0, num_tasks: int = 2) -> TaskSet:
  """A task set whose sizes depend on the seed (so seeds' data must be padded to stack)."""
  rng = np.random.default_rng(seed)
  split = lambda n: (rng.normal(size=(n, 4)), rng.normal(size=(n, 1)))
  specs = [TaskSpec(f"t{i}", "mse", 1) for i in range(num_tasks)]
  train = [split(20 + 7 * seed + 3 * i) for i in range(num_tasks)]
  test = [split(10 + 5 * seed + i) for i in range(num_tasks)]
  return make_taskset("varying", specs, train, test)


def _no_seed(num_tasks: int = 2):
  return _varying(0, num_tasks)


@pytest.mark.parametrize(
  "taskset,model,method,k",
  [
    ("mmoe_regression", "hard_sharing", "equal", 0),
    ("mmoe_regression", "hard_sharing", "pcgrad", 2),  # rng-using aggregator, K < T
    ("varying", "split", "equal", 0),  # sizes differ per data seed: padded on the seed axis
  ],
)
def test_n_seeds_equal_n_single_seed_runs_on_their_own_data(monkeypatch, taskset, model, method, k):
  monkeypatch.setitem(data.TASKSETS, "varying", _varying)
  config = _config(method=method, tasks_per_batch=k)
  if taskset == "varying":
    config.taskset = taskset
    config.taskset_kwargs = ml_collections.ConfigDict({"seed": 1, "num_tasks": 2})
  configs.switch(config, "model", model)
  config.model_kwargs.width = 16
  validation.validate_config(config)
  run = build.prepare_run(config, build.build_taskset(config))
  assert run.per_seed_data and run.data.x_train.shape[0] == 3
  out = loop.train_run(run, progress=False)
  for s in range(3):
    one = _alone(config, s)
    alone = loop.train_run(build.prepare_run(one, build.build_taskset(one)), progress=False)
    chex.assert_trees_all_close(
      jax.tree.map(lambda v, s=s: v[s], out["state"].params),
      alone["state"].params,
      rtol=2e-5,
      atol=2e-6,
    )
    for task, metrics in alone["tasks"].items():
      for key, value in metrics.items():
        np.testing.assert_allclose(out["tasks_per_seed"][s][task][key], value, rtol=1e-4)
  # Different data seeds really are different data.
  assert not np.allclose(run.data.y_train[0], run.data.y_train[1])


def test_without_resample_every_seed_shares_one_data_set(monkeypatch):
  calls = []
  counted = lambda **kw: calls.append(kw) or mmoe_regression(**kw)
  monkeypatch.setitem(data.TASKSETS, "mmoe_regression", counted)
  config = _config(resample_data=False)
  taskset = build.build_taskset(config)
  run = build.prepare_run(config, taskset)
  assert len(calls) == 1 and not run.per_seed_data
  # No seed axis on the data: the one DeviceData every seed's step closes over.
  chex.assert_trees_all_equal(run.data, DeviceData.from_taskset(taskset))
  assert run.state.step.shape == (3,)
  # resample_data with one seed is the plain run: no seed axis anywhere.
  one = build.prepare_run(_config(num_seeds=1), taskset)
  assert not one.per_seed_data and one.data.x_train.shape == taskset.x_train.shape


def test_resampled_seeds_draw_data_seed_plus_s(monkeypatch):
  config = _config()
  taskset = build.build_taskset(config)
  sets = build.seed_tasksets(config, taskset)
  assert sets[0] is taskset
  for s, ts in enumerate(sets):
    want = mmoe_regression(**{**SMALL, "correlation": 0.9, "seed": 11 + s})
    np.testing.assert_array_equal(ts.x_train, want.x_train)
  # The builder's default data seed when taskset_kwargs has none.
  del config.taskset_kwargs["seed"]
  assert build.data_seed(config) == 0


def test_a_task_set_without_a_seed_is_refused_before_any_work(monkeypatch, tmp_path):
  monkeypatch.setitem(data.TASKSETS, "no_seed", _no_seed)
  config = _config(taskset="no_seed", taskset_kwargs=ml_collections.ConfigDict())
  msg = r"resample_data.*'no_seed' takes no seed"
  with pytest.raises(ValueError, match=msg):
    validation.validate_config(config)
  with pytest.raises(ValueError, match=msg):
    experiment.train_and_evaluate(config, str(tmp_path / "wd"), progress=False)
  assert not (tmp_path / "wd").exists()
  validation.validate_config(_config(taskset="no_seed", resample_data=False))  # fine without
  with pytest.raises(ValueError, match="resample_data must be True or False"):
    bad = _config()
    del bad["resample_data"]
    bad.resample_data = "yes"  # e.g. a dict config
    validation.validate_config(bad)


def test_summary_baseline_and_resume_with_resampled_data(tmp_path):
  config = _config(baseline="independent")
  taskset = build.build_taskset(config)
  main = build.prepare_run(config, taskset)
  base = build.prepare_run(experiment.baseline_config(config), taskset)
  chex.assert_trees_all_equal(main.data, base.data)  # the baseline: the same N data sets
  workdir = str(tmp_path / "wd")
  summary = experiment.train_and_evaluate(config, workdir, progress=False)
  assert summary["num_seeds"] == 3 and summary["data_seeds"] == [11, 12, 13]
  for task, metrics in summary["tasks"].items():
    per = summary["tasks_per_seed"][task]["mse"]
    assert len(per) == 3 and len(set(per)) == 3
    np.testing.assert_allclose(metrics["mse"], np.mean(per))
    lo, hi = summary["tasks_ci95"][task]["mse"]
    assert lo <= metrics["mse"] <= hi
  assert len(summary["delta_m_per_seed"]) == 3 and "95% CI" in summary["table"]
  with open(os.path.join(workdir, "summary.json")) as f:
    assert json.load(f)["data_seeds"] == [11, 12, 13]
  # Stopped at step 3 and resumed: the same numbers as the uninterrupted run.
  other = str(tmp_path / "wd2")
  experiment.train_and_evaluate(_config(baseline="independent", num_steps=3), other, progress=False)
  resumed = experiment.train_and_evaluate(config, other, progress=False)
  assert resumed["tasks_per_seed"] == summary["tasks_per_seed"]
  assert resumed["baseline"]["tasks_per_seed"] == summary["baseline"]["tasks_per_seed"]
  # A checkpoint of shared data is not resumed with resampled data (or the reverse).
  with pytest.raises(experiment.CheckpointError, match="resample_data"):
    experiment.train_and_evaluate(_config(baseline="independent", resample_data=False), other)


def test_nan_guard_names_the_seed_and_its_data_seed(tmp_path):
  config = _config(optimizer="sgd", learning_rate=1e38)
  with pytest.raises(loop.NonFiniteError, match=r"\(seed 5, run 0 of 3, data seed 11\)"):
    experiment.train_and_evaluate(config, str(tmp_path / "wd"), progress=False)


def _mesh_worker():
  """Two virtual devices: seeds (and their data) split over a mesh == one device."""
  config = _config(mesh=ml_collections.ConfigDict({"data": 2, "task": 1}), num_seeds=2)
  taskset = build.build_taskset(config)
  ref = loop.train_run(build.prepare_run(config, taskset), progress=False)
  run = build.prepare_run(config, taskset, mesh=build.sharding.make_mesh(config.mesh))
  out = loop.train_run(run, progress=False)
  diff = jax.tree.map(
    lambda a, b: float(np.max(np.abs(a - b))), ref["state"].params, out["state"].params
  )
  print(
    json.dumps(
      {
        "max_abs_diff": max(jax.tree.leaves(diff)),
        "data_devices": len(run.data.x_train.sharding.device_set),
      }
    )
  )


def test_resampled_seeds_on_a_mesh_equal_one_device():
  res = json.loads(run_script(__file__, 2).strip().splitlines()[-1])
  assert res["max_abs_diff"] < 1e-5 and res["data_devices"] == 2, res


if __name__ == "__main__":
  _mesh_worker()
