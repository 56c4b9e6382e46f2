"""TAG end to end: affinities, groups for k = 1..K, one network per group, the comparison.

One all-task run measures the affinities (its network is the "all together" option);
:func:`mtl_jax.grouping.select_groups` picks groups for every k; one hard-sharing network
per selected group is trained and each task takes its test metrics from the group that
serves it; every task alone and (small T) every partition into k blocks are trained for
comparison. With ``grouping.num_seeds`` > 1 the affinity run is repeated on further seeds
(each with its own task-set draw) and the adjusted Rand index against planted clusters is
reported per estimator, as a mean with a 95% interval.
"""

import dataclasses
import inspect
import os
import time
from collections.abc import Sequence

import ml_collections
import numpy as np

from mtl_jax import data as data_lib
from mtl_jax import loop
from mtl_jax import metrics as metrics_lib
from mtl_jax.build import build_taskset, prepare_run
from mtl_jax.grouping.affinity import (
  ESTIMATORS,
  affinity_run,
  check_all_labelled,
  check_all_tasks,
  estimator_matrix,
)
from mtl_jax.grouping.objective import grouping_score, serving_groups
from mtl_jax.grouping.report import planted_ari, render_report, write_affinity, write_json
from mtl_jax.grouping.selection import METHODS, select_groups
from mtl_jax.summary import ci95
from mtl_jax.tasks import TaskSet


def subset_taskset(taskset: TaskSet, indices: Sequence[int]) -> TaskSet:
  """The tasks ``indices`` of ``taskset`` (in that order) as a task set of their own."""
  idx = np.asarray(list(indices), np.int64)
  t = taskset.num_tasks
  if idx.size == 0 or idx.min() < 0 or idx.max() >= t or len(set(idx.tolist())) != idx.size:
    raise ValueError(f"task indices must be distinct, in [0, {t}), got {list(indices)}")

  def pick(x):
    return None if x is None else np.asarray(x)[idx]

  return dataclasses.replace(
    taskset,
    name=f"{taskset.name}[{','.join(map(str, idx.tolist()))}]",
    specs=tuple(taskset.specs[i] for i in idx),
    **{
      f: pick(getattr(taskset, f))
      for f in ("x_train", "y_train", "n_train", "x_test", "y_test", "n_test")
      + ("descriptors", "label_mean", "label_std")
    },
  )


def partitions(items: Sequence[int], num_blocks: int) -> list[list[tuple[int, ...]]]:
  """Every partition of ``items`` into exactly ``num_blocks`` non-empty blocks (sorted)."""
  items = list(items)
  if not items:
    return [[]] if num_blocks == 0 else []
  first, rest = items[0], items[1:]
  out = []
  for p in partitions(rest, num_blocks - 1):  # ``first`` alone
    out.append(sorted([(first,)] + p))
  for p in partitions(rest, num_blocks):  # ``first`` joins a block
    for b in range(len(p)):
      out.append(sorted(p[:b] + [tuple(sorted((first,) + p[b]))] + p[b + 1 :]))
  return sorted(out)


def _group_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """One plain run per network: no baseline, all tasks every step, no checkpoints."""
  config = ml_collections.ConfigDict(config.to_dict())
  config.baseline = ""
  config.tasks_per_batch = 0
  config.checkpoint_every = 0
  return config


class _Trainer:
  """Trains one network per task group (each group once) and keeps its test metrics."""

  def __init__(self, config, taskset: TaskSet, progress: bool):
    self.config, self.taskset, self.progress = _group_config(config), taskset, progress
    self.metrics: dict[tuple[int, ...], dict] = {}

  def __call__(self, group: tuple[int, ...]) -> dict:
    group = tuple(sorted(group))
    if group not in self.metrics:
      sub = subset_taskset(self.taskset, group)
      run = prepare_run(self.config, sub)
      desc = "group " + ",".join(map(str, group))
      self.metrics[group] = loop.train_run(run, progress=self.progress, desc=desc)["tasks"]
    return self.metrics[group]

  def served(self, serving: Sequence[tuple[int, ...]]) -> dict:
    """Per-task test metrics, each task's from the network of the group serving it."""
    names = self.taskset.names
    return {names[i]: self(g)[names[i]] for i, g in enumerate(serving)}


def _exhaustive(trainer: _Trainer, k: int, single: dict) -> dict:
  """Trains every partition into k blocks; the best by Δm% against every task alone."""
  taskset, best = trainer.taskset, None
  for blocks in partitions(range(taskset.num_tasks), k):
    serving = [next(b for b in blocks if i in b) for i in range(taskset.num_tasks)]
    dm = metrics_lib.delta_m(taskset, trainer.served(serving), single)[0]
    if best is None or dm > best["delta_m"] + 1e-12:
      best = {"groups": [list(b) for b in blocks], "delta_m": dm, "serving": serving}
  best["num_partitions"] = len(partitions(range(taskset.num_tasks), k))
  best["tasks"] = trainer.served(best.pop("serving"))
  return best


def _settings(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """``config.grouping`` with every field checked (ValueError naming the field)."""
  g = config.get("grouping") or ml_collections.ConfigDict()
  if g.get("estimator", "lookahead") not in ESTIMATORS:
    raise ValueError(f"unknown grouping.estimator {g.estimator!r}; valid: {', '.join(ESTIMATORS)}")
  if g.get("method", "auto") not in METHODS:
    raise ValueError(f"unknown grouping.method {g.method!r}; valid: {', '.join(METHODS)}")
  if not 1 <= g.get("num_groups", 2) <= g.get("max_groups", 3):
    raise ValueError("need 1 <= grouping.num_groups <= grouping.max_groups")
  n = g.get("num_seeds", 1)
  if int(n) != n or n < 1:
    raise ValueError(f"grouping.num_seeds must be an integer >= 1, got {n}")
  if config.get("num_seeds", 1) not in (0, 1):
    raise ValueError(
      f"grouping trains one network per group: num_seeds must be 1, got {config.num_seeds}; "
      "repeat the affinity study over seeds with grouping.num_seeds (--seeds)"
    )
  return g


def _data_seed_base(config: ml_collections.ConfigDict) -> int:
  """The task set's own seed (``taskset_kwargs.seed``, else its builder's default)."""
  builder = data_lib.TASKSETS.get(config.taskset)
  param = inspect.signature(builder).parameters.get("seed") if builder else None
  if param is None:
    raise ValueError(
      f"grouping.num_seeds > 1 draws a task set per seed, but task set {config.taskset!r} "
      "takes no seed argument; set grouping.num_seeds=1"
    )
  seed = config.taskset_kwargs.get("seed", param.default)
  if seed is inspect.Parameter.empty:
    raise ValueError(f"grouping.num_seeds > 1 needs taskset_kwargs.seed for {config.taskset!r}")
  return int(seed)


def seed_configs(config: ml_collections.ConfigDict, n: int) -> list[ml_collections.ConfigDict]:
  """Seed s = 0..n−1: run seed ``config.seed + s`` and data seed (the task set's) + s.

  Seed 0 is ``config`` itself; the others redraw the task set (for planted clusters: new
  weight vectors and examples) as well as the initialisation and batches.
  """
  out = [config]
  if n > 1:
    base = _data_seed_base(config)
    for s in range(1, n):
      c = ml_collections.ConfigDict(config.to_dict())
      c.seed = config.seed + s
      c.taskset_kwargs.seed = base + s
      out.append(c)
  return out


def _affinity(config, g, taskset: TaskSet, progress: bool) -> tuple[dict, float]:
  """:func:`affinity_run` with ``config.grouping``'s settings, and its wall time in s."""
  t0 = time.perf_counter()
  aff = affinity_run(
    _group_config(config),
    taskset,
    g.get("affinity_every", 10),
    g.get("lookahead", "optimizer"),
    g.get("lookahead_lr", 0.1),
    progress=progress,
  )
  return aff, time.perf_counter() - t0


def seed_study(config, first: dict, first_seconds: float, progress: bool = False) -> dict:
  """Affinity runs over ``grouping.num_seeds`` seeds (seed 0's is ``first``); per seed and
  estimator the groups chosen at k = ``num_groups`` and, with planted clusters, their
  adjusted Rand index, summarised as mean and 95% Student-t interval."""
  g = _settings(config)
  k, method = g.get("num_groups", 2), g.get("method", "auto")
  clusters = g.get("planted_clusters", 0)
  cfgs = seed_configs(config, g.get("num_seeds", 1))
  runs = [(first, first_seconds)]
  for cfg in cfgs[1:]:
    runs.append(_affinity(cfg, g, build_taskset(cfg), progress))
  base = _data_seed_base(config) if len(cfgs) > 1 else config.taskset_kwargs.get("seed")
  out = {
    "seeds": [int(c.seed) for c in cfgs],
    "data_seeds": [base + s for s in range(len(cfgs))] if len(cfgs) > 1 else [base],
    "affinity_every": g.get("affinity_every", 10),
    "num_steps": config.num_steps,
    "affinity_run_seconds": [round(s, 2) for _, s in runs],
    "groups": {est: [] for est in ESTIMATORS},
  }
  aris = {est: [] for est in ESTIMATORS}
  for aff, _ in runs:
    for est in ESTIMATORS:
      m = estimator_matrix(aff, est)
      sel = select_groups(m, k, method)
      out["groups"][est].append([list(x) for x in sel])
      if clusters > 1:
        aris[est].append(planted_ari(serving_groups(m, sel), clusters))
  if clusters > 1:
    out["planted_ari"] = aris
    out["ari_mean"] = {est: float(np.mean(v)) for est, v in aris.items()}
    out["ari_ci95"] = {est: ci95(v) for est, v in aris.items()}
  return out


def _select_and_train(config, g, taskset: TaskSet, aff: dict, matrix, progress: bool) -> dict:
  """Groups for k = 1..K, their networks, and the compared options with Δm% vs alone."""
  t, names = taskset.num_tasks, taskset.names
  method, k = g.get("method", "auto"), g.get("num_groups", 2)
  selections = {n: select_groups(matrix, n, method) for n in range(1, g.get("max_groups", 3) + 1)}
  serving = serving_groups(matrix, selections[k])
  trainer = _Trainer(config, taskset, progress)
  trainer.metrics[tuple(range(t))] = aff["tasks"]
  single = {names[i]: trainer((i,))[names[i]] for i in range(t)}
  options = {
    "all": {"groups": [list(range(t))], "tasks": aff["tasks"]},
    "alone": {"groups": [[i] for i in range(t)], "tasks": single},
    "tag": {"groups": [list(x) for x in selections[k]], "tasks": trainer.served(serving)},
  }
  if t <= g.get("exhaustive_max_tasks", 6):
    options["exhaustive"] = _exhaustive(trainer, k, single)
  for opt in options.values():
    opt["delta_m"] = metrics_lib.delta_m(taskset, opt["tasks"], single)[0]
  by_k = {}  # every k's selection trained too (TAG's comparison across budgets)
  for n, sel in selections.items():
    tasks = trainer.served(serving_groups(matrix, sel))
    dm = metrics_lib.delta_m(taskset, tasks, single)[0]
    by_k[str(n)] = {"groups": [list(x) for x in sel], "tasks": tasks, "delta_m": dm}
  return {
    "selections": {str(n): [list(x) for x in s] for n, s in selections.items()},
    "selection_scores": {str(n): grouping_score(matrix, s) for n, s in selections.items()},
    "num_groups": k,
    "serving": [list(x) for x in serving],
    "options": options,
    "tag_by_k": by_k,
    "networks_trained": len(trainer.metrics),
  }


def run_procedure(config: ml_collections.ConfigDict, workdir: str, progress: bool = False) -> dict:
  """TAG end to end: affinities, groups for k = 1..K, one network per group, the report.

  Every k's groups are trained (``tag_by_k``); ``num_groups`` is the k compared in detail
  with all tasks together, every task alone and (small T) every partition into k blocks.

  ``config.grouping`` holds ``affinity_every``, ``estimator`` (lookahead | cosine),
  ``lookahead`` (optimizer | sgd), ``lookahead_lr``, ``max_groups`` (K), ``num_groups``
  (the k that is trained), ``method`` (auto | exact | beam), ``exhaustive_max_tasks``,
  ``planted_clusters`` (> 1: report the adjusted Rand index against them) and
  ``num_seeds`` (> 1: :func:`seed_study` over that many seeds, in ``results["seeds"]``).
  Writes ``affinity.json``, ``affinity.png``, ``results.json`` and ``report.md``.
  """
  from mtl_jax.validation import validate_config  # noqa: PLC0415

  g = _settings(config)
  taskset = build_taskset(config)
  validate_config(_group_config(config), taskset)
  check_all_tasks(config, taskset.num_tasks)
  check_all_labelled(taskset)
  if g.get("num_seeds", 1) > 1:
    _data_seed_base(config)  # fail before training when the task set cannot be redrawn
  os.makedirs(workdir, exist_ok=True)
  aff, seconds = _affinity(config, g, taskset, progress)
  estimator = g.get("estimator", "lookahead")
  matrix = estimator_matrix(aff, estimator)
  write_affinity(workdir, matrix, taskset.names, estimator)
  results = {
    "taskset": taskset.name,
    "tasks": taskset.names,
    "estimator": estimator,
    "affinity": np.asarray(matrix).tolist(),
    "measured_steps": aff["measured_steps"],
    "affinity_run_seconds": round(seconds, 2),
  }
  results.update(_select_and_train(config, g, taskset, aff, matrix, progress))
  if g.get("planted_clusters", 0) > 1:
    serving = [tuple(x) for x in results["serving"]]
    results["planted_ari"] = planted_ari(serving, g.planted_clusters)
  if g.get("num_seeds", 1) > 1:
    results["seeds"] = seed_study(config, aff, seconds, progress)
  write_json(os.path.join(workdir, "results.json"), results)
  with open(os.path.join(workdir, "report.md"), "w") as f:
    f.write(render_report(taskset, results))
  return results
