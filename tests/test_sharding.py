"""SPMD over 8 virtual CPU devices equals single-device training.

``XLA_FLAGS=--xla_force_host_platform_device_count=8`` must be set before JAX starts, so
the comparison runs in a subprocess (this file run as a script); the parent test reads
its JSON result. Mesh-shape logic is tested in-process.
"""

import json
import os
import sys

import pytest
from virtual_devices import run_script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOL = 1e-5

# (name, method, mesh {data, task}, config overrides); rotated digits have T = 4 tasks.
CASES = [
  # Hard sharing with a loss weighting; T = 4 splits over the task axis.
  ("equal_data4_task2", "equal", {"data": 4, "task": 2}, {}),
  # A per-task-gradient aggregator sampling K = 2 of T = 3 tasks per step; T = 3 does not
  # divide the task axis (2), so task parameters fall back to replicated.
  (
    "pcgrad_K2_T3_replicated",
    "pcgrad",
    {"data": 4, "task": 2},
    {"angles": (0, 90, 180), "tasks_per_batch": 2},
  ),
  ("mgda_data8", "mgda", {"data": 8, "task": 1}, {}),
  # Eight seeds in one program: the seed axis is split over the eight devices.
  ("seeds8_over_devices", "upgrad", {"data": 4, "task": 2}, {"num_seeds": 8}),
]


def _worker():
  """Runs every case on one device and on the mesh; prints one JSON line of results."""
  import jax
  import numpy as np

  from experiments.configs import default
  from mtl_jax import experiment, sharding

  assert jax.device_count() == 8, jax.devices()
  results = {}
  for name, method, mesh_cfg, over in CASES:
    config = default.get_config("smoke")
    config.baseline = ""
    config.method = method
    config.model_kwargs.width = 32
    config.num_steps = 12
    config.log_every = 4
    config.batch_size = 8
    config.tasks_per_batch = over.get("tasks_per_batch", 0)
    config.num_seeds = over.get("num_seeds", 1)
    if "angles" in over:
      config.taskset_kwargs.angles = over["angles"]
    taskset = experiment.build_taskset(config)
    ref = experiment.train_run(
      experiment.prepare_run(config, taskset, config.model, method), progress=False, evaluate=False
    )
    mesh = sharding.make_mesh(mesh_cfg)
    out = experiment.train_run(
      experiment.prepare_run(config, taskset, config.model, method, mesh=mesh),
      progress=False,
      evaluate=False,
    )
    diffs = jax.tree.map(
      lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b)))),
      ref["state"].params,
      out["state"].params,
    )
    head = out["state"].params["tasks"]["head"]
    head = head[next(iter(head))]["kernel"] if "kernel" not in head else head["kernel"]
    results[name] = {
      "max_abs_diff": max(jax.tree.leaves(diffs)),
      "steps": int(np.max(out["state"].step)),
      "head_spec": str(tuple(head.sharding.spec)),
      "head_devices": len(head.sharding.device_set),
      "shared_spec": str(tuple(jax.tree.leaves(out["state"].params["shared"])[0].sharding.spec)),
      "opt_specs": sorted(
        {str(tuple(x.sharding.spec)) for x in jax.tree.leaves(out["state"].opt_state)}
      ),
    }
  print("RESULT " + json.dumps(results))


@pytest.fixture(scope="module")
def results():
  stdout = run_script(__file__, 8)
  line = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")][-1]
  return json.loads(line[len("RESULT ") :])


@pytest.mark.parametrize("case", [c[0] for c in CASES])
def test_sharded_equals_single_device(results, case):
  r = results[case]
  print(
    f"{case}: max |params_8dev - params_1dev| = {r['max_abs_diff']:.3g} after {r['steps']} steps"
  )
  assert r["steps"] == 12
  assert r["max_abs_diff"] < TOL
  if case != "seeds8_over_devices":  # θ^sh is replicated (with seeds, split by seed)
    assert r["shared_spec"] == "()"


def test_task_params_follow_the_task_axis(results):
  # T = 4 on a task axis of 2: heads and their Adam moments are split over "task".
  r = results["equal_data4_task2"]
  assert r["head_spec"] == "('task',)"
  assert r["head_devices"] == 8
  assert "('task',)" in r["opt_specs"] and "()" in r["opt_specs"]
  # T = 3 on a task axis of 2: replicated.
  assert results["pcgrad_K2_T3_replicated"]["head_spec"] == "()"


def test_seed_axis_is_split_over_devices(results):
  r = results["seeds8_over_devices"]
  assert r["head_spec"] == "(('data', 'task'),)" and r["head_devices"] == 8
  assert r["shared_spec"] == "(('data', 'task'),)"


def test_mesh_shape_rules():
  from mtl_jax import sharding

  assert sharding.mesh_shape({"data": -1, "task": 1}, 8) == (8, 1)
  assert sharding.mesh_shape({"data": -1, "task": 2}, 8) == (4, 2)
  assert sharding.mesh_shape({"data": 2, "task": -1}, 8) == (2, 4)
  assert sharding.mesh_shape({"data": -1, "task": 1}, 1) == (1, 1)
  assert (
    sharding.make_mesh({"data": -1, "task": 1}) is None
    or len(sharding.make_mesh({"data": -1, "task": 1}).devices.flat) > 1
  )
  with pytest.raises(ValueError, match="needs 16 devices"):
    sharding.mesh_shape({"data": 8, "task": 2}, 8)
  with pytest.raises(ValueError, match="do not split evenly by task=3"):
    sharding.mesh_shape({"data": -1, "task": 3}, 8)
  with pytest.raises(ValueError, match="at most one"):
    sharding.mesh_shape({"data": -1, "task": -1}, 8)


if __name__ == "__main__":
  sys.path.insert(0, ROOT)
  _worker()
