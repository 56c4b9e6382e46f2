"""The end of an experiment: per-task test metrics, the baseline's, Δm% and the table."""

import ml_collections

from mtl_jax import metrics as metrics_lib
from mtl_jax.tasks import TaskSet


def format_table(
  taskset: TaskSet,
  mtl: dict,
  single: dict | None,
  per: dict | None,
  mtl_name: str,
  single_name: str | None,
) -> str:
  """One line per task: its primary metric for the model (and baseline, rel. Δ %)."""
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


def summarize(
  config: ml_collections.ConfigDict, taskset: TaskSet, main: dict, base: dict | None = None
) -> dict:
  """The ``summary.json`` dict from the main run's result (and the baseline's).

  Args:
    config: the main run's config.
    taskset: the task set both runs trained on.
    main: :func:`mtl_jax.loop.train_run`'s result for ``config.model``.
    base: the same for ``config.baseline``, or None.
  """
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
  if base is not None:
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
  baseline_name = config.baseline if base is not None else None
  table = format_table(taskset, main["tasks"], single, per, config.model, baseline_name)
  if base is not None:
    table += (
      f"\nΔm% ({config.model} vs {config.baseline}, positive is better): {summary['delta_m']:+.2f}"
    )
  summary["table"] = table
  return summary
