"""The streaming data path trains exactly what the on-device path trains.

For the same seed a streamed run (batches gathered on the host from the ids the step's own
key names, sent in pieces, scanned over) ends with the same parameters as the on-device
run (bit for bit on CPU) and the same test metrics (to float rounding: the test split is
evaluated in host-fed pieces); across seeds, each seed's own data, K < T sampling, an
rng-using aggregator, shared inputs, a mesh, and a resume. Also: automatic selection by
``device_data_budget_mb``, the config checks, and the metric merge of pieces.
"""

import json

import chex
import jax
import numpy as np
import pytest
from virtual_devices import run_script

from experiments.configs import default
from mtl_jax import build, experiment, validation
from mtl_jax.data import sampling, streaming

TINY_MB = 1e-3  # a budget every task set here exceeds: "auto" then streams


def _config(arg="smoke", **over):
  config = default.get_config(arg)
  config.baseline = ""
  config.model_kwargs.width = 16
  config.num_steps = 6
  config.log_every = 3  # chunks of 3 steps; streamed in pieces of 1 step (TINY_MB)
  for key, value in over.items():
    config[key] = value
  return config


def _train(config, path, budget=streaming.DEFAULT_BUDGET_MB):
  config.data_path, config.device_data_budget_mb = path, float(budget)
  run = experiment.prepare_run(config, experiment.build_taskset(config))
  return run, experiment.train_run(run, progress=False)


# name: (config argument, overrides, parameters bit-equal on CPU)
CASES = {
  # The default job's smoke (2 seeds, one data set), K = 2 of 4 tasks: streamed with a
  # resume half-way (test_streamed_resume_continues_the_on_device_run_exactly).
  "default_seeds2_k2": ("smoke", dict(tasks_per_batch=2), True),
  # An aggregator that draws random numbers (PCGrad's projection order); each seed on its
  # own data draw (resample_data): seed s's batches come from its own host arrays.
  "pcgrad_resampled_seeds2": (
    "smoke,method=pcgrad",
    dict(resample_data=True, tasks_per_batch=3),
    True,
  ),
  # Shared inputs (multi-label): one row of inputs goes over and is broadcast to the K
  # tasks on the device (XLA then fuses differently: last-bit rounding).
  "shared_inputs": (
    "smoke,taskset=digit_attributes",
    dict(num_seeds=1),
    False,
  ),
}


@pytest.fixture(scope="module")
def references():
  """The on-device runs, trained once (the resume test reuses the default case's)."""
  cache = {}

  def get(name):
    if name not in cache:
      arg, over, _ = CASES[name]
      cache[name] = _train(_config(arg, **over), "device")
    return cache[name]

  return get


@pytest.mark.parametrize("name", [name for name in CASES if name != "default_seeds2_k2"])
def test_streamed_run_equals_on_device_run(name, references):
  arg, over, exact = CASES[name]
  ref_run, ref = references(name)
  run, out = _train(_config(arg, **over), "auto", budget=TINY_MB)  # auto: it must stream
  assert ref_run.stream is None and run.stream is not None
  assert run.data.x_train.shape[1] == 0  # the device holds no rows
  assert int(np.max(jax.device_get(out["state"].step))) == 6
  if exact:
    chex.assert_trees_all_equal(out["state"].params, ref["state"].params)
  chex.assert_trees_all_close(out["state"].params, ref["state"].params, rtol=1e-5, atol=1e-7)
  chex.assert_trees_all_close(out["tasks_per_seed"], ref["tasks_per_seed"], rtol=1e-5, atol=1e-6)
  if run.num_seeds > 1:  # the seeds really differ (each its own ids, or its own data)
    a, b = (jax.tree.map(lambda v, s=s: v[s], out["state"].params) for s in (0, 1))
    assert not np.allclose(jax.tree.leaves(a)[0], jax.tree.leaves(b)[0])
  with pytest.raises(ValueError, match="grouping affinity run needs the task data on the device"):
    build.require_device_data(run, "the grouping affinity run")


def test_host_ids_are_the_device_steps_ids():
  """``chunk_ids`` on the CPU = ``sample_ids`` with each step's key as ``train_step`` splits it."""
  rng = jax.random.PRNGKey(3)
  n_train = np.array([5, 9, 7, 5], np.int32)
  task, idx = streaming.chunk_ids(rng, 40, 6, n_train, 2, 8)
  assert task.shape == (6, 2) and idx.shape == (6, 2, 8)
  ids = jax.jit(sampling.sample_ids, static_argnums=(2, 3))  # one program for every step

  @jax.jit
  def step_key(step):  # as train_step splits fold_in(state.rng, state.step)
    return jax.random.split(jax.random.fold_in(rng, step))[0]

  for i in range(6):
    t, e = ids(step_key(np.int32(40 + i)), n_train, 2, 8)
    np.testing.assert_array_equal(task[i], t)
    np.testing.assert_array_equal(idx[i], e)
  assert np.all(idx < n_train[task][..., None]) and len({tuple(t) for t in task}) > 1


def test_merge_pieces_sums_weights_and_keeps_the_first_bad_step():
  piece = lambda loss, step, bad: {
    "loss_sum": np.array([1.0, 2.0]),
    "loss_count": np.array([1.0, 1.0]),
    "weight_sum": np.array([0.5, 0.5]),
    "loss": np.float32(loss),
    "nonfinite_step": np.int32(step),
    "nonfinite_tasks": np.array(bad),
  }
  m = streaming.merge_pieces(
    [piece(1.0, -1, [False, False]), piece(4.0, 5, [False, True]), piece(0.0, 7, [True, True])],
    [3, 2, 1],
  )
  np.testing.assert_allclose(m["loss_sum"], [3.0, 6.0])
  np.testing.assert_allclose(m["loss"], (3 * 1.0 + 2 * 4.0) / 6)
  assert int(m["nonfinite_step"]) == 5 and m["nonfinite_tasks"].tolist() == [False, True]


def test_auto_selection_by_budget_and_config_checks():
  config = _config()
  ts = experiment.build_taskset(config)
  size = streaming.padded_bytes([ts])
  assert size == sum(np.asarray(v).nbytes for v in sampling.DeviceData.from_taskset(ts))
  for path, budget_mb, want in [
    ("auto", size / 2**20 * 1.01, "device"),
    ("auto", size / 2**20 * 0.99, "stream"),
    ("device", TINY_MB, "device"),
    ("stream", 1e6, "stream"),
  ]:
    config.data_path, config.device_data_budget_mb = path, budget_mb
    assert streaming.choose_path(config, [ts]) == want, (path, budget_mb)
  config.data_path = "gpu"
  with pytest.raises(ValueError, match="data_path must be one of auto, device, stream.*'gpu'"):
    validation.validate_config(config)
  config.data_path = "auto"
  config.device_data_budget_mb = -1.0
  with pytest.raises(ValueError, match="device_data_budget_mb must be a finite number"):
    validation.validate_config(config)


def test_streamed_resume_continues_the_on_device_run_exactly(tmp_path, references):
  """The default smoke streamed 3 steps, then resumed (streaming) to 6: the on-device run's
  parameters exactly, its test metrics to rounding, every logged step once."""
  _, ref = references("default_seeds2_k2")
  arg, over, _ = CASES["default_seeds2_k2"]
  config = _config(arg, checkpoint_every=3, **over)
  config.data_path, config.device_data_budget_mb, config.num_steps = "stream", TINY_MB, 3
  ts, log = experiment.build_taskset(config), str(tmp_path / "metrics.jsonl")
  kwargs = dict(ckpt_dir=str(tmp_path / "checkpoints"), log_path=log, progress=False)
  experiment.run_one(config, ts, **kwargs)
  config.num_steps = 6
  out = experiment.run_one(config, ts, **kwargs)
  with open(log) as f:
    assert [json.loads(line)["step"] for line in f] == [3, 6]
  assert int(np.max(jax.device_get(out["state"].step))) == 6
  chex.assert_trees_all_equal(out["state"].params, ref["state"].params)
  chex.assert_trees_all_close(out["tasks_per_seed"], ref["tasks_per_seed"], rtol=1e-5, atol=1e-6)


def _mesh_worker():
  """Streamed on a 2-device mesh = on-device on it, one seed (B split) and two (seeds split)."""
  assert jax.device_count() == 2, jax.devices()
  out = {}
  for seeds in (1,):  # B split over "data" (several seeds: the seed axis, as the state's)
    res = []
    for path in ("device", "stream"):
      config = _config(num_seeds=seeds, tasks_per_batch=2, num_steps=2, log_every=2)
      config.mesh.data = 2
      res.append(_train(config, path, budget=TINY_MB))
    (_, a), (run, b) = res
    diff = jax.tree.map(
      lambda x, y: float(np.max(np.abs(x - y))), a["state"].params, b["state"].params
    )
    out[seeds] = {
      "max_abs_diff": max(jax.tree.leaves(diff)),
      "stream": run.stream is not None,
      "metrics_close": bool(
        np.allclose(
          jax.tree.leaves(a["tasks_per_seed"]), jax.tree.leaves(b["tasks_per_seed"]), atol=1e-5
        )
      ),
    }
  print(json.dumps(out))


def test_streamed_on_a_mesh_equals_on_device_on_it():
  res = json.loads(run_script(__file__, 2).strip().splitlines()[-1])
  for r in res.values():
    assert r["stream"] and r["metrics_close"] and r["max_abs_diff"] < 1e-6, res


if __name__ == "__main__":
  _mesh_worker()
