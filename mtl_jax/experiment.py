"""``train_and_evaluate(config, workdir)``: what the launcher runs (importable from Colab).

Writes into ``workdir``: ``config.json`` (resolved config), ``metrics.jsonl`` (one JSON
object per logged chunk: step, per-task training losses, norms), ``summary.json``
(final per-task test metrics, and with a baseline: its metrics, Δm% and the table) and
``checkpoints/`` (orbax, see :mod:`mtl_jax.checkpoint`). The baseline run
(``config.baseline``, e.g. ``independent``) keeps its own ``metrics.jsonl`` and
``checkpoints/`` under ``workdir/baseline``.

Order of work: every check (config names and sizes, data, method hyperparameters, the
mesh, an existing checkpoint's compatibility, workdir writability) runs before the first
file is written, so a bad config leaves the workdir as it was. Running again on the same
workdir resumes each run from its latest checkpoint and continues its ``metrics.jsonl``.
A NaN/Inf loss or update stops training with :class:`NonFiniteError` before anything from
the bad chunk is logged or saved.
"""

import dataclasses
import functools
import json
import math
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm
from absl import logging

from mtl_jax import aggregators, models, sharding, weighting
from mtl_jax import data as data_lib
from mtl_jax import metrics as metrics_lib
from mtl_jax.checkpoint import Checkpointer, CheckpointError
from mtl_jax.data.sampling import DeviceData
from mtl_jax.tasks import TaskSet
from mtl_jax.train import make_chunk, make_optimizer, make_train_step, method_kind

__all__ = [
  "CheckpointError",
  "NonFiniteError",
  "prepare_run",
  "run_one",
  "train_and_evaluate",
  "train_run",
  "validate_config",
]


class NonFiniteError(FloatingPointError):
  """A task loss or the update became NaN/Inf; the message names the task(s) and step."""


def _is_writer() -> bool:
  # Multi-host: one process writes the JSON files (orbax coordinates checkpoints itself).
  return jax.process_index() == 0


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
  name = name or config.model
  if name != config.model:
    # A baseline takes the main model's kwargs that it understands (trunk, width, ...),
    # then its own ``baseline_kwargs``.
    accepted = models.accepted_kwargs(name) if name in models.names() else set()
    kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    kwargs.update(dict(config.get("baseline_kwargs", {}) or {}))
  try:
    return models.get(
      name,
      num_tasks=taskset.num_tasks,
      output_size=taskset.output_size,
      input_shape=taskset.input_shape,
      descriptors=taskset.descriptors,
      **kwargs,
    )
  except TypeError as e:
    raise ValueError(f"model {name!r}: bad config.model_kwargs {sorted(kwargs)}: {e}") from e


def _check_method(config: ml_collections.ConfigDict, method: str, num_tasks: int):
  """Builds the method (and a weighting's state) so bad hyperparameters fail up front."""
  kwargs = dict(config.get("method_kwargs", {}) or {})
  kind = method_kind(method)
  lib = weighting if kind == "weighting" else aggregators
  try:
    transform = lib.get(method, **kwargs)
  except TypeError as e:
    raise ValueError(f"method {method!r}: bad config.method_kwargs {sorted(kwargs)}: {e}") from e
  if kind == "weighting":
    transform.init(num_tasks)  # e.g. static weights of the wrong length raise here


def validate_config(config: ml_collections.ConfigDict, taskset: TaskSet | None = None):
  """Checks names and sizes before any work; each error names the offending field.

  Without ``taskset``: names (model, baseline, method, task set) and scalar sizes. With
  it: K vs T, ``config.num_tasks`` vs the data, the method's hyperparameters for T tasks,
  and the mesh vs the visible devices and the batch size.
  """
  for field in ("seed", "num_steps", "model", "method"):
    if field not in config:
      raise ValueError(f"config is missing the field {field!r}")
  if config.model not in models.names():
    raise ValueError(f"unknown model {config.model!r}; valid names: {', '.join(models.names())}")
  if config.get("baseline") and config.baseline not in models.names():
    raise ValueError(
      f"unknown baseline model {config.baseline!r}; valid names: {', '.join(models.names())}"
    )
  method_kind(config.method)
  if config.get("baseline"):
    method_kind(config.get("baseline_method", "equal"))
  if config.taskset not in data_lib.names():
    raise ValueError(
      f"unknown task set {config.taskset!r}; valid names: {', '.join(data_lib.names())}"
    )
  if config.num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {config.num_steps}")
  if config.batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {config.batch_size}")
  if config.log_every < 1:
    raise ValueError(f"log_every must be >= 1, got {config.log_every}")
  if config.get("checkpoint_every", 0) < 0:
    raise ValueError(
      f"checkpoint_every must be >= 0 (0: only at the end), got {config.checkpoint_every}"
    )
  if taskset is not None:
    t = taskset.num_tasks
    k = config.tasks_per_batch or t
    if not 1 <= k <= t:
      raise ValueError(
        f"tasks_per_batch (K) = {k} but the task set has T = {t} tasks; "
        "need 1 <= K <= T (0 means K = T)"
      )
    if config.get("num_tasks") and config.num_tasks != t:
      raise ValueError(
        f"config.num_tasks = {config.num_tasks} but task set {taskset.name!r} has {t} tasks"
      )
    _check_method(config, config.method, t)
    if config.get("baseline"):
      _check_method(config, config.get("baseline_method", "equal"), t)
    sharding.check_batch(sharding.make_mesh(config.get("mesh")), config.batch_size)


@dataclasses.dataclass
class Run:
  """One training run, fully built (and restored) before anything is written."""

  config: ml_collections.ConfigDict
  taskset: TaskSet
  model: Any
  data: DeviceData
  state: Any  # TrainState, placed on the mesh
  train_step: Callable
  mesh: Any  # jax.sharding.Mesh or None (single device)
  state_shardings: Any
  ckpt: Checkpointer | None
  start_step: int  # 0, or the restored checkpoint's step


def prepare_run(
  config: ml_collections.ConfigDict,
  taskset: TaskSet,
  model_name: str,
  method: str,
  *,
  ckpt_dir: str | None = None,
  mesh=None,
) -> Run:
  """Builds the model, optimizer and state and restores the latest checkpoint, if any.

  Raises ``ValueError`` / :class:`CheckpointError` (a corrupt or incompatible
  checkpoint) before any file is written.
  """
  data = DeviceData.from_taskset(taskset)
  model = build_model(config, taskset, model_name)
  optimizer = make_optimizer(
    config.optimizer,
    config.learning_rate,
    config.get("weight_decay", 0.0),
    config.get("clip_norm", 0.0),
    config.get("schedule", "constant"),
    config.num_steps,
  )
  k = config.tasks_per_batch or taskset.num_tasks
  init_state, train_step = make_train_step(
    model,
    data,
    optimizer,
    method,
    dict(config.get("method_kwargs", {}) or {}),
    tasks_per_batch=k,
    batch_size=config.batch_size,
    shared_inputs=taskset.shared_inputs,
    constrain_batch=None if mesh is None else sharding.batch_constraint(mesh),
  )

  def init(x):
    rng = jax.random.PRNGKey(config.seed)
    return init_state(jax.random.fold_in(rng, 1), model.init(jax.random.fold_in(rng, 0), x))

  # Jitted: one compile instead of one per eager op. It runs once, so on CPU it skips
  # LLVM's optimisations (the PRNG makes it slow to compile: ~3x faster start-up).
  options = {"xla_backend_optimization_level": 0} if jax.default_backend() == "cpu" else None
  state = jax.jit(init, compiler_options=options)(jnp.asarray(taskset.x_train[0, :2]))
  shardings = None
  if mesh is not None:
    shardings = sharding.state_sharding(mesh, state, taskset.num_tasks)
    state = sharding.put(state, shardings)
    data = sharding.put(data, jax.tree.map(lambda _: sharding.replicated(mesh), data))
  ckpt = Checkpointer(ckpt_dir) if ckpt_dir else None
  start = 0
  if ckpt is not None:
    restored = ckpt.restore(state, config.to_dict())
    if restored is not None:
      state, start = restored, int(jax.device_get(restored.step))
      if start > config.num_steps:
        ckpt.close()
        raise CheckpointError(
          f"the latest checkpoint in {ckpt.directory} is at step {start}, past "
          f"num_steps = {config.num_steps}; raise --config.num_steps, or use a fresh "
          "--workdir to train a shorter run"
        )
  return Run(config, taskset, model, data, state, train_step, mesh, shardings, ckpt, start)


def _continue_log(path: str, step: int):
  """Keeps ``metrics.jsonl`` lines up to ``step`` (the resumed step); drops the rest.

  Lines past the checkpoint were written by the interrupted run and will be logged again;
  a torn last line (killed mid-write) is dropped too.
  """
  kept = []
  if step > 0 and os.path.exists(path):
    with open(path) as f:
      for line in f:
        try:
          if json.loads(line)["step"] <= step:
            kept.append(line if line.endswith("\n") else line + "\n")
        except (ValueError, KeyError, TypeError):
          continue
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.writelines(kept)
  os.replace(tmp, path)


def _nonfinite_message(
  taskset: TaskSet, m: dict, desc: str, ckpt: Checkpointer | None, first: int, last: int
) -> str:
  bad = [name for name, b in zip(taskset.names, np.asarray(m["nonfinite_tasks"])) if b]
  what = (
    f"the loss of task(s) {', '.join(bad[:10])}"
    + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
    + " is NaN/Inf"
    if bad
    else "the update (weighted loss, gradient or optimizer step) is NaN/Inf "
    "while every task loss was finite"
  )
  saved = ckpt.latest_step() if ckpt is not None else None
  return (
    f"{desc or 'training'}: non-finite values at step {int(m['nonfinite_step'])}: {what}. "
    f"Nothing from steps {first}..{last} was logged or saved; the latest checkpoint is "
    + (f"step {saved}" if saved is not None else "none")
    + ". Try a lower learning_rate or clip_norm > 0"
    + (", and check these tasks' data." if bad else ".")
  )


def train_run(
  run: Run,
  log_path: str | None = None,
  progress: bool = True,
  desc: str = "",
  evaluate: bool = True,
) -> dict:
  """Trains ``run`` from its start step to ``config.num_steps``; evaluates on the test split.

  Logs each chunk to ``log_path`` (continuing a resumed file), checkpoints at the first
  chunk end at or after every multiple of ``config.checkpoint_every`` and at the end.

  Returns:
    ``{"tasks": per-task test metrics, "params": counts, "train_time_s", "state"}``
    (``"tasks"`` is ``{}`` with ``evaluate=False``).

  Raises:
    NonFiniteError: a task loss or the update became NaN/Inf (nothing of it is saved).
  """
  config, taskset, state = run.config, run.taskset, run.state
  chunk = min(config.log_every, config.num_steps)
  every = config.get("checkpoint_every", 0)
  config_dict = config.to_dict()
  runners = {}
  writer = _is_writer()
  if log_path and writer:
    _continue_log(log_path, run.start_step)
  log = open(log_path, "a") if log_path and writer else None
  if run.start_step:
    logging.warning(
      "%s: resuming from checkpoint step %d (%s)", desc or "run", run.start_step, run.ckpt.directory
    )
  t0 = time.time()
  steps_done = last_saved = run.start_step
  bar = tqdm.tqdm(
    total=config.num_steps, initial=steps_done, desc=desc, disable=not progress, leave=False
  )
  try:
    while steps_done < config.num_steps:
      n = min(chunk, config.num_steps - steps_done)
      if n not in runners:
        fn = make_chunk(run.train_step, n)
        runners[n] = (
          fn if run.mesh is None else sharding.jit_sharded(fn, run.state_shardings, run.mesh)
        )
      new_state, m = runners[n](state)
      m = jax.device_get(m)
      if int(m["nonfinite_step"]) >= 0:
        if run.ckpt is not None:
          run.ckpt.wait()  # the last good checkpoint must be complete before we stop
        raise NonFiniteError(
          _nonfinite_message(taskset, m, desc, run.ckpt, steps_done + 1, steps_done + n)
        )
      state = new_state
      steps_done += n
      bar.update(n)
      count = np.asarray(m["loss_count"])
      per_task = np.where(count > 0, np.asarray(m["loss_sum"]) / np.maximum(count, 1), np.nan)
      record = {
        "step": steps_done,
        "loss": float(m["loss"]),
        "losses": {
          name: (None if math.isnan(v) else float(v)) for name, v in zip(taskset.names, per_task)
        },
        "grad_norm": float(m["grad_norm"]),
        "update_norm": float(m["update_norm"]),
        "param_norm": float(m["param_norm"]),
        "elapsed_s": round(time.time() - t0, 3),
      }
      if log:
        log.write(json.dumps(record) + "\n")
        log.flush()
      bar.set_postfix(loss=f"{record['loss']:.4g}")
      if run.ckpt is not None and every and steps_done // every > last_saved // every:
        run.ckpt.save(steps_done, state, config_dict)
        last_saved = steps_done
    if run.ckpt is not None and steps_done != last_saved:
      run.ckpt.save(steps_done, state, config_dict)
  finally:
    bar.close()
    if log:
      log.close()
    if run.ckpt is not None:
      run.ckpt.close()
  test = _evaluate(run.model, run.mesh)(state.params, run.data) if evaluate else None
  counts = {
    "shared": models.count_params(state.params["shared"]),
    "task_specific": models.count_params(state.params["tasks"]),
  }
  counts["total"] = counts["shared"] + counts["task_specific"]
  return {
    "tasks": metrics_lib.metrics_by_task(taskset, jax.device_get(test)) if evaluate else {},
    "params": counts,
    "train_time_s": round(time.time() - t0, 2),
    "state": state,
  }


def _evaluate(model, mesh) -> Callable:
  fn = functools.partial(metrics_lib.evaluate, model, split="test")
  if mesh is None:
    return jax.jit(fn)
  return jax.jit(fn, out_shardings=sharding.replicated(mesh))


def run_one(
  config,
  taskset: TaskSet,
  model_name: str,
  method: str,
  log_path: str | None = None,
  progress: bool = True,
  desc: str = "",
  *,
  ckpt_dir: str | None = None,
  mesh=None,
) -> dict:
  """Trains one model on a task set; returns final test metrics and parameter counts.

  ``ckpt_dir`` enables checkpoints and resume; ``mesh`` (see :mod:`mtl_jax.sharding`)
  runs it SPMD. The result's ``"state"`` is the final ``TrainState``.
  """
  run = prepare_run(config, taskset, model_name, method, ckpt_dir=ckpt_dir, mesh=mesh)
  return train_run(run, log_path, progress, desc)


def _check_workdir_early(workdir: str):
  """Cheap check that creates nothing: the nearest existing ancestor is a writable dir."""
  path = os.path.abspath(workdir)
  while not os.path.exists(path):
    path = os.path.dirname(path)
  if not os.path.isdir(path) or not os.access(path, os.W_OK):
    raise ValueError(f"workdir {workdir!r} cannot be written: {path!r} is not a writable directory")


def _check_workdir(workdir: str):
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, f".write_test.{jax.process_index()}")
    with open(probe, "w") as f:
      f.write("")
    os.remove(probe)
  except OSError as e:
    raise ValueError(f"workdir {workdir!r} cannot be written: {e}") from e


def format_table(
  taskset: TaskSet,
  mtl: dict,
  single: dict | None,
  per: dict | None,
  mtl_name: str,
  single_name: str | None,
) -> str:
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


def train_and_evaluate(
  config: ml_collections.ConfigDict, workdir: str, progress: bool = True
) -> dict:
  """Trains ``config.model`` (and ``config.baseline``), evaluates, writes the workdir.

  Resumes each run from ``workdir[/baseline]/checkpoints`` when one exists.

  Returns:
    The summary dict also written to ``workdir/summary.json``.

  Raises:
    ValueError: a bad config, data, method or workdir (nothing is written);
      :class:`CheckpointError` (a ``ValueError``) for a checkpoint that cannot be resumed.
    NonFiniteError: training produced NaN/Inf.
  """
  if config.get("distributed"):
    sharding.initialize_distributed()
  validate_config(config)
  taskset = build_taskset(config)
  validate_config(config, taskset)
  _check_workdir_early(workdir)
  mesh = sharding.make_mesh(config.get("mesh"))
  main_run = prepare_run(
    config,
    taskset,
    config.model,
    config.method,
    mesh=mesh,
    ckpt_dir=os.path.join(workdir, "checkpoints"),
  )
  base_run = None
  try:
    if config.get("baseline"):
      base_run = prepare_run(
        config,
        taskset,
        config.baseline,
        config.get("baseline_method", "equal"),
        mesh=mesh,
        ckpt_dir=os.path.join(workdir, "baseline", "checkpoints"),
      )
    _check_workdir(workdir)
  except Exception:
    main_run.ckpt.close()
    raise
  writer = _is_writer()
  if writer:
    _atomic_write_json(os.path.join(workdir, "config.json"), config.to_dict())

  main = train_run(main_run, os.path.join(workdir, "metrics.jsonl"), progress, desc=config.model)
  summary = {
    "taskset": taskset.name,
    "model": config.model,
    "method": config.method,
    "num_steps": config.num_steps,
    "seed": config.seed,
    "tasks": main["tasks"],
    "params": main["params"],
    "train_time_s": main["train_time_s"],
  }
  single = per = None
  if base_run is not None:
    if writer:
      os.makedirs(os.path.join(workdir, "baseline"), exist_ok=True)
    base = train_run(
      base_run, os.path.join(workdir, "baseline", "metrics.jsonl"), progress, desc=config.baseline
    )
    single = base["tasks"]
    dm, per = metrics_lib.delta_m(taskset, main["tasks"], single)
    summary["baseline"] = {
      "model": config.baseline,
      "tasks": single,
      "params": base["params"],
      "train_time_s": base["train_time_s"],
    }
    summary["delta_m"] = dm
    summary["relative_improvement_percent"] = per
  table = format_table(taskset, main["tasks"], single, per, config.model, config.get("baseline"))
  if single is not None:
    table += (
      f"\nΔm% ({config.model} vs {config.baseline}, positive is better): {summary['delta_m']:+.2f}"
    )
  summary["table"] = table
  if writer:
    _atomic_write_json(os.path.join(workdir, "summary.json"), summary)
  return summary
