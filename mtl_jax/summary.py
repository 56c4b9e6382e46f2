"""The end of an experiment: per-task test metrics over seeds, the baseline's, Δm% and the table.

With N seeds every number comes per seed and as a mean with a 95% confidence interval
(Student t over seeds, N − 1 degrees of freedom). The baseline trains on the same seeds,
so Δm% is computed per seed against the baseline of that seed (paired) and then averaged.
With ``config.resample_data`` seed s also trains (model and baseline alike) on its own task
set, data seed ``data_seeds[s]``.
"""

import math

import ml_collections
import numpy as np
from scipy import stats

from mtl_jax import build
from mtl_jax import metrics as metrics_lib
from mtl_jax.tasks import HIGHER_IS_BETTER, TaskSet


def ci95(values) -> list[float] | None:
  """``[lo, hi]``: the 95% Student-t interval of the mean; None for fewer than 2 values."""
  v = np.asarray(values, np.float64)
  if v.size < 2:
    return None
  half = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
  return [float(v.mean() - half), float(v.mean() + half)]


def per_seed_table(per_seed: list[dict]) -> dict:
  """``[{task: {metric: v}}] * N`` → ``{task: {metric: [v_1..v_N]}}``."""
  return {
    task: {k: [r[task][k] for r in per_seed] for k in metrics}
    for task, metrics in per_seed[0].items()
  }


def _ci_table(lists: dict) -> dict:
  return {task: {k: ci95(v) for k, v in m.items()} for task, m in lists.items()}


def _cell(values, ci) -> str:
  mean = float(np.mean(values))
  if ci is None:
    return f"{mean:.4f}"
  return f"{mean:.4f}±{(ci[1] - ci[0]) / 2:.4f}"


def format_table(
  taskset: TaskSet,
  mtl: dict,
  single: dict | None,
  per: dict | None,
  mtl_name: str,
  single_name: str | None,
) -> str:
  """One line per task: its primary metric for the model (and baseline, rel. Δ %).

  ``mtl`` / ``single`` map task → metric → a list of per-seed values (mean ± CI
  half-width is shown for several seeds) or a single float.
  """
  lists = lambda d: {t: {k: np.atleast_1d(v).tolist() for k, v in m.items()} for t, m in d.items()}
  mtl = lists(mtl)
  single = lists(single) if single is not None else None
  wide = max(len(v) for m in mtl.values() for v in m.values()) > 1
  w = 22 if wide else 14
  head = f"{'task':<14}{'metric':<10}{mtl_name:>{w}}"
  if single is not None:
    head += f"{single_name:>{w}}{'rel. Δ %':>10}"
  lines = [head, "-" * len(head)]
  for spec in taskset.specs:
    k = spec.primary_metric
    values = mtl[spec.name][k]
    line = f"{spec.name:<14}{k:<10}{_cell(values, ci95(values)):>{w}}"
    if single is not None:
      base = single[spec.name][k]
      line += f"{_cell(base, ci95(base)):>{w}}{per[spec.name]:>+10.2f}"
    lines.append(line)
  return "\n".join(lines)


def _paired(taskset: TaskSet, main_seeds: list[dict], base_seeds: list[dict]) -> dict:
  """Δm% per seed (paired with the baseline of the same seed) and per-task win rates."""
  dms, pers = [], []
  for mtl, single in zip(main_seeds, base_seeds):
    dm, per = metrics_lib.delta_m(taskset, mtl, single)
    dms.append(dm)
    pers.append(per)
  wins = {}
  for spec in taskset.specs:
    k, sign = spec.primary_metric, 1.0 if HIGHER_IS_BETTER[spec.primary_metric] else -1.0
    better = [
      sign * (m[spec.name][k] - b[spec.name][k]) > 0 for m, b in zip(main_seeds, base_seeds)
    ]
    wins[spec.name] = float(np.mean(better))
  return {
    "delta_m": float(np.mean(dms)),
    "delta_m_per_seed": dms,
    "delta_m_ci95": ci95(dms),
    "relative_improvement_percent": {
      t: float(np.mean([p[t] for p in pers])) for t in taskset.names
    },
    "beats_baseline_fraction": wins,
  }


def summarize(
  config: ml_collections.ConfigDict, taskset: TaskSet, main: dict, base: dict | None = None
) -> dict:
  """The ``summary.json`` dict from the main run's result (and the baseline's).

  Args:
    config: the main run's config.
    taskset: the task set both runs trained on.
    main: :func:`mtl_jax.loop.train_run`'s result for ``config.model``.
    base: the same for ``config.baseline`` (trained on the same seeds), or None.
  """
  main_lists = per_seed_table(main["tasks_per_seed"])
  summary = {
    "taskset": taskset.name,
    "model": config.model,
    "method": config.method,
    "num_steps": config.num_steps,
    "seed": config.seed,
    "num_seeds": len(main["tasks_per_seed"]),
    "tasks": main["tasks"],
    "tasks_per_seed": main_lists,
    "tasks_ci95": _ci_table(main_lists),
    "params": main["params"],
    "train_time_s": main["train_time_s"],
  }
  if config.get("resample_data") and summary["num_seeds"] > 1:  # seed s on its own data
    summary["data_seeds"] = [build.data_seed(config) + s for s in range(summary["num_seeds"])]
  base_lists = per = None
  if base is not None:
    base_lists = per_seed_table(base["tasks_per_seed"])
    summary["baseline"] = {
      "model": config.baseline,
      "tasks": base["tasks"],
      "tasks_per_seed": base_lists,
      "tasks_ci95": _ci_table(base_lists),
      "params": base["params"],
      "train_time_s": base["train_time_s"],
    }
    summary.update(_paired(taskset, main["tasks_per_seed"], base["tasks_per_seed"]))
    per = summary["relative_improvement_percent"]
  baseline_name = config.baseline if base is not None else None
  table = format_table(taskset, main_lists, base_lists, per, config.model, baseline_name)
  if base is not None:
    ci = summary["delta_m_ci95"]
    band = f" (95% CI {ci[0]:+.2f} .. {ci[1]:+.2f} over {summary['num_seeds']} seeds)" if ci else ""
    table += (
      f"\nΔm% ({config.model} vs {config.baseline}, positive is better): "
      f"{summary['delta_m']:+.2f}{band}"
    )
  summary["table"] = table
  return summary
