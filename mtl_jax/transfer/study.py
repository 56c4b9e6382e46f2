"""Pre-train → checkpoint → fine-tune: the adaptation curve, the practices and the CV.

:func:`run_study` (what ``python -m experiments.finetune`` runs) takes a task set config
(``config.taskset``: all tasks, each with its own D^tr / D^test), holds out
``transfer.target_task`` as 𝒯_b and:

1. pre-trains two sources with the library's own loop (:func:`mtl_jax.build.prepare_run` /
   :func:`mtl_jax.loop.train_run`, ``config.num_seeds`` seeds, orbax checkpoints) in
   ``workdir/sources/stl`` (the single task ``transfer.stl_source_task``) and
   ``workdir/sources/mtl`` (every task but the target, the single-task source's task first,
   so row 0 of both is that task). A source given as ``transfer.{stl,mtl}_source_workdir``
   (any finished ``experiments.train`` workdir) is used instead of pre-training;
2. reads θ back from the checkpoints (never the source data) and fine-tunes on D^tr_b:
   the **adaptation curve** (test metric vs n examples per class, ``config.num_seeds``
   seeds, 95% Student-t CI) for ``scratch``, ``stl_pretrained``, ``mtl_pretrained`` and
   ``linear_probe`` (the multi-task source, every trunk layer frozen);
3. measures each **practice** at ``practices.n_per_class`` (paired by seed against plain
   fine-tuning of the multi-task source);
4. runs **k-fold cross-validation** over ``cv``'s grid on D^tr_b only (folds × grid points
   in one program), retrains the best point on all of it and reports its test metric.

Everything that can fail (names, values, a missing or misfitting source checkpoint) fails
before the first file is written.
"""

import os
import time

import ml_collections

from mtl_jax import build, writers
from mtl_jax.loop import train_run
from mtl_jax.summary import summarize
from mtl_jax.tasks import TaskSet
from mtl_jax.transfer import arms as arms_lib
from mtl_jax.transfer import checks, report, splits
from mtl_jax.transfer import source as source_lib
from mtl_jax.transfer.evaluate import cross_validate, curve_specs, practice_specs

SOURCES = ("stl", "mtl")


def source_tasksets(config, full: TaskSet) -> dict[str, TaskSet]:
  """``{"target", "stl", "mtl"}``: the held-out task and the two sources' task sets.

  The multi-task source trains on ``transfer.mtl_source_tasks`` (empty: every task but
  the target), with the single-task source's task first when it is one of them (so row 0
  of both sources is that task).
  """
  t = config.transfer
  target = splits.task_index(full, t.target_task, "transfer.target_task")
  stl = splits.task_index(full, t.stl_source_task, "transfer.stl_source_task")
  if stl == target:
    raise ValueError("transfer.stl_source_task must differ from transfer.target_task")
  named = tuple(t.get("mtl_source_tasks", ()) or ())
  ids = [splits.task_index(full, n, "transfer.mtl_source_tasks") for n in named]
  if target in ids:
    raise ValueError(f"transfer.mtl_source_tasks must not contain the target {t.target_task!r}")
  ids = ids or [i for i in range(full.num_tasks) if i != target]  # default: all but the target
  mtl = ([stl] if stl in ids else []) + [i for i in dict.fromkeys(ids) if i != stl]
  return {
    "target": splits.select_tasks(full, [target]),
    "stl": splits.select_tasks(full, [stl]),
    "mtl": splits.select_tasks(full, mtl),
  }


def _source_config(config, ts: TaskSet) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict(config.to_dict())
  c.baseline = ""
  c.source_tasks = tuple(ts.names)  # which tasks of the task set it trained on
  del c["transfer"], c["cv"], c["practices"]
  return c


def _prepare_sources(config, sets: dict, workdir: str) -> dict:
  """Builds (and restores) the pre-training runs of the sources not given as workdirs."""
  runs = {}
  try:
    for name in SOURCES:
      if config.transfer[f"{name}_source_workdir"]:
        continue
      cfg = _source_config(config, sets[name])
      build_ckpt = os.path.join(workdir, "sources", name, "checkpoints")
      runs[name] = build.prepare_run(cfg, sets[name], ckpt_dir=build_ckpt)
  except Exception:
    for run in runs.values():
      run.ckpt.close()
    raise
  return runs


def _pretrain(runs: dict, workdir: str, progress: bool) -> dict:
  out = {}
  for name, run in runs.items():
    wd = os.path.join(workdir, "sources", name)
    log = os.path.join(wd, "metrics.jsonl")
    res = train_run(run, log, progress, desc=f"pre-train {name}")
    summary = summarize(run.config, run.taskset, res)
    writers.write_json(os.path.join(wd, "config.json"), run.config.to_dict())
    writers.write_json(os.path.join(wd, "summary.json"), summary)
    out[name] = {"tasks": list(run.taskset.names), "test": summary["tasks"]}
    out[name]["train_time_s"] = res["train_time_s"]
  return out


def _load_given(config, target: TaskSet) -> dict:
  """The sources given as workdirs, loaded and checked against the target model now."""
  got = {}
  for name in SOURCES:
    path = config.transfer[f"{name}_source_workdir"]
    if path:
      got[name] = _checked(source_lib.load_source(path), config, target)
  return got


def _checked(src, config, target: TaskSet):
  model = source_lib.target_model(src.config, target)
  keep = config.transfer.head == "keep"
  source_lib.check_fits(src, model, target, keep, config.transfer.source_row)
  checks.check_levels(config, model)
  return src


def run_study(config, workdir: str, progress: bool = False, announce=None) -> dict:
  """Pre-trains (or reads) the sources, fine-tunes, cross-validates; writes ``workdir``.

  Returns:
    The dict written to ``workdir/summary.json`` (see :mod:`mtl_jax.transfer`).

  Raises:
    ValueError (:class:`~mtl_jax.transfer.source.SourceError`, ``CheckpointError``): a bad
    config or source, before anything is written.
  """
  t0 = time.time()
  checks.validate(config)
  full = build.build_taskset(config)
  checks.validate(config, full)
  sets = source_tasksets(config, full)
  checks.check_levels(config, source_lib.target_model(config.to_dict(), sets["target"]))
  given = _load_given(config, sets["target"])
  writers.check_workdir_early(workdir)
  runs = _prepare_sources(config, sets, workdir)
  try:
    writers.check_workdir(workdir)
  except ValueError:
    for run in runs.values():
      run.ckpt.close()
    raise
  if announce is not None:
    announce()
  writers.write_json(os.path.join(workdir, "config.json"), config.to_dict())
  pretrained = _pretrain(runs, workdir, progress)
  t1 = time.time()
  sources = dict(given)
  for name in runs:
    path = os.path.join(workdir, "sources", name)
    sources[name] = _checked(source_lib.load_source(path), config, sets["target"])
  summary = _fine_tune(config, sets, sources, pretrained)
  summary["timing_s"] = {
    "pretrain": round(t1 - t0, 2),
    "fine_tune": round(time.time() - t1, 2),
    "total": round(time.time() - t0, 2),
  }
  report.write(workdir, summary)
  return summary


def _fine_tune(config, sets: dict, sources: dict, pretrained: dict) -> dict:
  t = config.transfer
  ctx = arms_lib.Context(
    sets["target"], config.seed, num_steps=t.num_steps, batch_size=t.batch_size, base=t.optimizer
  )
  ctx.min_seeds = config.num_seeds
  scratch_config = sources["mtl"].config
  # The curve's and the practices' runs share programs: one call for both.
  c_specs, c_finish = curve_specs(config, ctx, sources, scratch_config)
  p_specs, p_finish = practice_specs(config, ctx, sources)
  res = arms_lib.run_specs(ctx, c_specs + p_specs, scratch_config)
  curve = c_finish(res[: len(c_specs)])
  summary = {
    "target": report.target_info(sets["target"]),
    "metric": sets["target"].specs[0].primary_metric,
    "num_seeds": int(config.num_seeds),
    "sources": {
      f"{name}_pretrained": {
        "path": os.path.dirname(sources[name].path),
        "step": sources[name].step,
        "model": sources[name].config["model"],
        **pretrained.get(name, {}),
      }
      for name in SOURCES
    },
    **curve,
  }
  summary["practices"] = p_finish(res[len(c_specs) :])
  summary["cv"] = cross_validate(config, ctx, sources["mtl"], scratch_config)
  return summary
