"""``train_and_evaluate(config, workdir)``: what the launcher runs (importable from Colab).

Writes into ``workdir``: ``config.json`` (resolved config), ``metrics.jsonl`` (one JSON
object per logged chunk: step, per-task training losses, norms), ``summary.json``
(final per-task test metrics, and with a baseline: its metrics, Δm% and the table).
The baseline run (``config.baseline``, e.g. ``independent``) logs to
``workdir/baseline/metrics.jsonl``.
"""

import json
import math
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from mtl_jax import data as data_lib
from mtl_jax import metrics as metrics_lib
from mtl_jax import models
from mtl_jax.data.sampling import DeviceData
from mtl_jax.tasks import TaskSet
from mtl_jax.train import make_chunk, make_optimizer, make_train_step, method_kind


def _atomic_write_json(path: str, obj: Any):
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=2, sort_keys=True)
  os.replace(tmp, path)


def build_taskset(config: ml_collections.ConfigDict) -> TaskSet:
  kwargs = dict(config.get("taskset_kwargs", {}) or {})
  return data_lib.get_taskset(config.taskset, **kwargs)


def build_model(config: ml_collections.ConfigDict, taskset: TaskSet, name: str | None = None):
  kwargs = dict(config.get("model_kwargs", {}) or {})
  return models.get(name or config.model, num_tasks=taskset.num_tasks,
                    output_size=taskset.output_size, input_shape=taskset.input_shape,
                    descriptors=taskset.descriptors, **kwargs)


def validate_config(config: ml_collections.ConfigDict, taskset: TaskSet | None = None):
  """Checks names and sizes before any work; each error names the offending field."""
  for field in ("seed", "num_steps", "model", "method"):
    if field not in config:
      raise ValueError(f"config is missing the field {field!r}")
  if config.model not in models.names():
    raise ValueError(f"unknown model {config.model!r}; valid names: {', '.join(models.names())}")
  if config.get("baseline") and config.baseline not in models.names():
    raise ValueError(f"unknown baseline model {config.baseline!r}; valid names: "
                     f"{', '.join(models.names())}")
  method_kind(config.method)
  if config.taskset not in data_lib.names():
    raise ValueError(f"unknown task set {config.taskset!r}; valid names: "
                     f"{', '.join(data_lib.names())}")
  if config.num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {config.num_steps}")
  if config.batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {config.batch_size}")
  if config.log_every < 1:
    raise ValueError(f"log_every must be >= 1, got {config.log_every}")
  if taskset is not None:
    t = taskset.num_tasks
    k = config.tasks_per_batch or t
    if not 1 <= k <= t:
      raise ValueError(f"tasks_per_batch (K) = {k} but the task set has T = {t} tasks; "
                       "need 1 <= K <= T (0 means K = T)")
    if config.get("num_tasks") and config.num_tasks != t:
      raise ValueError(f"config.num_tasks = {config.num_tasks} but task set "
                       f"{taskset.name!r} has {t} tasks")


def run_one(config, taskset: TaskSet, model_name: str, method: str, log_path: str | None,
            progress: bool = True, desc: str = "") -> dict:
  """Trains one model on a task set; returns final test metrics and parameter counts."""
  data = DeviceData.from_taskset(taskset)
  model = build_model(config, taskset, model_name)
  optimizer = make_optimizer(config.optimizer, config.learning_rate,
                             config.get("weight_decay", 0.0), config.get("clip_norm", 0.0),
                             config.get("schedule", "constant"), config.num_steps)
  k = config.tasks_per_batch or taskset.num_tasks
  init_state, train_step = make_train_step(
      model, data, optimizer, method, dict(config.get("method_kwargs", {}) or {}),
      tasks_per_batch=k, batch_size=config.batch_size, shared_inputs=taskset.shared_inputs)
  rng = jax.random.PRNGKey(config.seed)
  params = model.init(jax.random.fold_in(rng, 0), jnp.asarray(taskset.x_train[0, :2]))
  state = init_state(jax.random.fold_in(rng, 1), params)
  chunk = min(config.log_every, config.num_steps)
  runners = {}
  log = open(log_path, "w") if log_path else None
  t0 = time.time()
  steps_done = 0
  bar = tqdm.tqdm(total=config.num_steps, desc=desc, disable=not progress, leave=False)
  try:
    while steps_done < config.num_steps:
      n = min(chunk, config.num_steps - steps_done)
      if n not in runners:
        runners[n] = make_chunk(train_step, n)
      state, m = runners[n](state)
      steps_done += n
      bar.update(n)
      m = jax.device_get(m)
      count = np.asarray(m["loss_count"])
      per_task = np.where(count > 0, np.asarray(m["loss_sum"]) / np.maximum(count, 1), np.nan)
      record = {
          "step": steps_done,
          "loss": float(m["loss"]),
          "losses": {name: (None if math.isnan(v) else float(v))
                     for name, v in zip(taskset.names, per_task)},
          "grad_norm": float(m["grad_norm"]),
          "update_norm": float(m["update_norm"]),
          "param_norm": float(m["param_norm"]),
          "elapsed_s": round(time.time() - t0, 3),
      }
      if log:
        log.write(json.dumps(record) + "\n")
        log.flush()
      bar.set_postfix(loss=f"{record['loss']:.4g}")
  finally:
    bar.close()
    if log:
      log.close()
  test = jax.jit(metrics_lib.evaluate, static_argnums=(0, 3))(model, state.params, data, "test")
  counts = {
      "shared": models.count_params(state.params["shared"]),
      "task_specific": models.count_params(state.params["tasks"]),
  }
  counts["total"] = counts["shared"] + counts["task_specific"]
  return {"tasks": metrics_lib.metrics_by_task(taskset, test), "params": counts,
          "train_time_s": round(time.time() - t0, 2), "state": state}


def format_table(taskset: TaskSet, mtl: dict, single: dict | None, per: dict | None,
                 mtl_name: str, single_name: str | None) -> str:
  head = f"{'task':<14}{'metric':<10}{mtl_name:>14}"
  if single is not None:
    head += f"{single_name:>14}{'rel. Δ %':>10}"
  lines = [head, "-" * len(head)]
  for spec in taskset.specs:
    k = spec.primary_metric
    line = f"{spec.name:<14}{k:<10}{mtl[spec.name][k]:>14.4f}"
    if single is not None:
      line += f"{single[spec.name][k]:>14.4f}{per[spec.name]:>+10.2f}"
    lines.append(line)
  return "\n".join(lines)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       progress: bool = True) -> dict:
  """Trains ``config.model`` (and ``config.baseline``), evaluates, writes the workdir.

  Returns:
    The summary dict also written to ``workdir/summary.json``.
  """
  validate_config(config)
  taskset = build_taskset(config)
  validate_config(config, taskset)
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, ".write_test")
    with open(probe, "w") as f:
      f.write("")
    os.remove(probe)
  except OSError as e:
    raise ValueError(f"workdir {workdir!r} cannot be written: {e}") from e
  _atomic_write_json(os.path.join(workdir, "config.json"), config.to_dict())

  main = run_one(config, taskset, config.model, config.method,
                 os.path.join(workdir, "metrics.jsonl"), progress, desc=config.model)
  summary = {
      "taskset": taskset.name, "model": config.model, "method": config.method,
      "num_steps": config.num_steps, "seed": config.seed,
      "tasks": main["tasks"], "params": main["params"], "train_time_s": main["train_time_s"],
  }
  single = per = None
  if config.get("baseline"):
    os.makedirs(os.path.join(workdir, "baseline"), exist_ok=True)
    base = run_one(config, taskset, config.baseline, config.get("baseline_method", "equal"),
                   os.path.join(workdir, "baseline", "metrics.jsonl"), progress,
                   desc=config.baseline)
    single = base["tasks"]
    dm, per = metrics_lib.delta_m(taskset, main["tasks"], single)
    summary["baseline"] = {"model": config.baseline, "tasks": single, "params": base["params"],
                           "train_time_s": base["train_time_s"]}
    summary["delta_m"] = dm
    summary["relative_improvement_percent"] = per
  table = format_table(taskset, main["tasks"], single, per, config.model, config.get("baseline"))
  if single is not None:
    table += f"\nΔm% ({config.model} vs {config.baseline}, positive is better): " \
             f"{summary['delta_m']:+.2f}"
  summary["table"] = table
  _atomic_write_json(os.path.join(workdir, "summary.json"), summary)
  return summary
