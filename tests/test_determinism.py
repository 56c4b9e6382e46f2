"""Same seed, same numbers: two in-process runs write identical metrics and summaries (CPU).

On GPU, XLA's reductions (scatter-add, some convolutions/reductions with atomics) may differ
run to run unless ``XLA_FLAGS=--xla_gpu_deterministic_ops=true`` is set; see BUILD.md.
"""

import json
import os

from experiments.configs import default
from mtl_jax import experiment

TIMING_KEYS = ("elapsed_s", "train_time_s")


def _strip(obj):
  if isinstance(obj, dict):
    return {k: _strip(v) for k, v in obj.items() if k not in TIMING_KEYS}
  return obj


def _read(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    metrics = [_strip(json.loads(line)) for line in f]
  with open(os.path.join(workdir, "summary.json")) as f:
    summary = _strip(json.load(f))
  return metrics, summary


def test_same_seed_identical_metrics_and_summary(tmp_path):
  config = default.get_config("smoke")
  config.baseline = ""
  config.model_kwargs.width = 16
  config.num_steps = 20
  config.log_every = 5
  config.tasks_per_batch = 2  # random task sampling is part of what must repeat
  runs = []
  for name in ("a", "b"):
    workdir = str(tmp_path / name)
    experiment.train_and_evaluate(config, workdir, progress=False)
    runs.append(_read(workdir))
  (metrics_a, summary_a), (metrics_b, summary_b) = runs
  assert len(metrics_a) == 4
  assert metrics_a == metrics_b
  assert summary_a == summary_b
  assert metrics_a[0]["loss"] != metrics_a[-1]["loss"]  # it did train
