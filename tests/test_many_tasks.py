"""T = 1000 synthetic tasks train on CPU: the task axis is a stacked array, not a loop."""

import json
import math
import os

from experiments.configs import default
from mtl_jax import experiment


def test_thousand_tasks_train_and_evaluate(tmp_path):
  config = default.get_config("smoke")
  config.taskset = "mmoe_regression"
  config.taskset_kwargs = {"num_tasks": 1000, "dim": 8, "n_train": 16, "n_test": 8}
  config.num_tasks = 1000
  config.baseline = ""
  config.model_kwargs.width = 16
  config.model_kwargs.depth = 1
  config.batch_size = 4
  config.tasks_per_batch = 0
  config.num_steps = 4
  config.log_every = 2
  workdir = str(tmp_path / "wd")
  summary = experiment.train_and_evaluate(config, workdir, progress=False)
  assert len(summary["tasks"]) == 1000
  assert all(math.isfinite(m["mse"]) for m in summary["tasks"].values())
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    lines = [json.loads(line) for line in f]
  assert [r["step"] for r in lines] == [2, 4]
  assert len(lines[-1]["losses"]) == 1000
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4"]
