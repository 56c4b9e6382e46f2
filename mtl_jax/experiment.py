"""``train_and_evaluate(config, workdir)``: what the launcher runs (importable from Colab).

Writes into ``workdir``: ``config.json`` (resolved config), ``metrics.jsonl`` (one JSON
object per logged chunk), ``summary.json`` (per-task test metrics; with a baseline its
metrics, Δm% and the table), plots (:mod:`mtl_jax.plots`) and ``checkpoints/`` (orbax). The baseline
(``config.baseline``, e.g. ``independent``) is simply a second run, built from
:func:`mtl_jax.configs.baseline_config`, with its own files under ``workdir/baseline``.

Order of work: every check (names, sizes, hyperparameters, the mesh, a checkpoint's
compatibility, the workdir) runs before the first file is written, so a bad config leaves
the workdir as it was. Running again on the same workdir resumes each run from its latest
checkpoint. Who does what: :mod:`mtl_jax.validation` (checks), :mod:`mtl_jax.build`
(task set, model, optimizer, state, resume), :mod:`mtl_jax.loop` (training, non-finite
guard), :mod:`mtl_jax.writers` (files), :mod:`mtl_jax.summary` (table, Δm%).
"""

import os
from collections.abc import Callable

import ml_collections

from mtl_jax import plots, sharding, writers
from mtl_jax.build import Run, build_model, build_taskset, prepare_run
from mtl_jax.checkpoint import CheckpointError
from mtl_jax.configs import baseline_config
from mtl_jax.loop import NonFiniteError, train_run
from mtl_jax.summary import format_table, summarize
from mtl_jax.tasks import TaskSet
from mtl_jax.train import make_train_step
from mtl_jax.validation import validate_config

__all__ = [
  "CheckpointError",
  "NonFiniteError",
  "Run",
  "build_model",
  "build_taskset",
  "format_table",
  "make_train_step",
  "prepare_run",
  "run_one",
  "train_and_evaluate",
  "train_run",
  "validate_config",
]


def run_one(
  config, taskset: TaskSet, model_name: str | None = None, method: str | None = None, **kwargs
) -> dict:
  """Prepares and trains one run (``log_path``, ``progress``, ``desc`` go to
  :func:`~mtl_jax.loop.train_run`; ``ckpt_dir``, ``mesh`` to :func:`prepare_run`)."""
  loop_keys = ("log_path", "progress", "desc")
  loop_kwargs = {k: kwargs.pop(k) for k in loop_keys if k in kwargs}
  run = prepare_run(config, taskset, model_name, method, **kwargs)
  return train_run(run, **loop_kwargs)


def _prepare_all(configs: list, taskset: TaskSet, workdirs: list, mesh) -> list[Run]:
  runs = []
  try:
    for config, workdir in zip(configs, workdirs):
      ckpt_dir = os.path.join(workdir, "checkpoints")
      runs.append(prepare_run(config, taskset, ckpt_dir=ckpt_dir, mesh=mesh))
  except Exception:
    for run in runs:
      run.ckpt.close()
    raise
  return runs


def train_and_evaluate(
  config: ml_collections.ConfigDict,
  workdir: str,
  progress: bool = True,
  announce: Callable[[], None] | None = None,
) -> dict:
  """Trains ``config.model`` (and ``config.baseline``), evaluates, writes the workdir.

  ``announce`` is called once every check has passed, before the first file is written.

  Returns:
    The summary dict also written to ``workdir/summary.json``.

  Raises:
    ValueError: a bad config, data, method or workdir (nothing is written);
      :class:`CheckpointError` (a ``ValueError``) for a checkpoint that cannot be resumed.
    NonFiniteError: training produced NaN/Inf.
  """
  if sharding.distributed_requested(config):
    sharding.initialize_distributed()
  validate_config(config)
  taskset = build_taskset(config)
  validate_config(config, taskset)
  writers.check_workdir_early(workdir)
  configs, workdirs = [config], [workdir]
  if config.get("baseline"):
    configs.append(baseline_config(config))
    workdirs.append(os.path.join(workdir, "baseline"))
  runs = _prepare_all(configs, taskset, workdirs, sharding.make_mesh(config.get("mesh")))
  try:
    writers.check_workdir(workdir)
  except ValueError:
    for run in runs:
      run.ckpt.close()
    raise
  if announce is not None:
    announce()
  writers.write_json(os.path.join(workdir, "config.json"), config.to_dict())
  results = [
    train_run(run, os.path.join(wd, "metrics.jsonl"), progress, desc=run.config.model)
    for run, wd in zip(runs, workdirs)
  ]
  summary = summarize(config, taskset, *results)
  writers.write_json(os.path.join(workdir, "summary.json"), summary)
  if writers.is_writer():
    plots.draw_all(workdir)
  return summary
