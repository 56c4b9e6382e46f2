"""Plots of a run, drawn from the files in its workdir (so they can be re-drawn any time).

:func:`draw_all` writes three PNGs next to ``summary.json``:

* ``curves.png`` — per-task training loss against step: the mean over seeds and a band
  from the lowest to the highest seed (the baseline dashed, when there is one);
* ``test_metrics.png`` — per-task test metric (each task's primary metric), model vs
  baseline, bars at the mean over seeds with 95% confidence intervals;
* ``delta_m.png`` — Δm% of every seed (points), their mean and its 95% CI.

``python -m experiments.report --workdir=DIR`` re-draws them.
"""

import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

FILES = ("curves.png", "test_metrics.png", "delta_m.png")


def read_log(path: str) -> list[dict]:
  """The records of a ``metrics.jsonl`` (empty if the file does not exist)."""
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def _loss_bands(records: list[dict], task: str):
  steps = np.array([r["step"] for r in records])
  per_seed = [r.get("losses_per_seed", {}).get(task) or [r["losses"][task]] for r in records]
  v = np.array([[np.nan if x is None else x for x in row] for row in per_seed], float)
  return steps, np.nanmean(v, 1), np.nanmin(v, 1), np.nanmax(v, 1)


def _grid(n: int):
  cols = min(n, 4)
  rows = -(-n // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
  for ax in axes.flat[n:]:
    ax.set_visible(False)
  return fig, axes.flat


def plot_curves(runs: dict[str, list[dict]], tasks: list[str], path: str) -> None:
  """Per-task training loss (mean and min–max band over seeds) of each named run."""
  fig, axes = _grid(len(tasks))
  for ax, task in zip(axes, tasks):
    for i, (name, records) in enumerate(runs.items()):
      if not records:
        continue
      steps, mean, lo, hi = _loss_bands(records, task)
      line = ax.plot(steps, mean, "--" if i else "-", label=name)[0]
      ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_title(task, fontsize=9)
    ax.set_xlabel("step")
    ax.set_yscale("log")
  axes[0].set_ylabel("training loss")
  axes[0].legend(fontsize=8)
  fig.tight_layout()
  _save(fig, path)


def _save(fig, path: str) -> None:
  """Writes the PNG under a temporary name, then renames it: never a half-written plot."""
  tmp = path + ".tmp"
  fig.savefig(tmp, dpi=110, format="png")
  plt.close(fig)
  os.replace(tmp, path)


def _bars(ax, x, summary_part: dict, tasks, metrics, offset, label):
  means = [summary_part["tasks"][t][m] for t, m in zip(tasks, metrics)]
  cis = summary_part.get("tasks_ci95", {})
  err = np.zeros((2, len(tasks)))
  for j, (t, m) in enumerate(zip(tasks, metrics)):
    ci = cis.get(t, {}).get(m)
    if ci:
      err[:, j] = [means[j] - ci[0], ci[1] - means[j]]
  ax.bar(x + offset, means, 0.4, yerr=err, capsize=3, label=label)


def plot_test_metrics(summary: dict, path: str) -> None:
  """Per-task primary test metric, model vs baseline, with 95% CIs over seeds."""
  tasks = list(summary["tasks"])
  metrics = [next(iter(summary["tasks"][t])) for t in tasks]  # accuracy or mse first
  fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(tasks) + 2), 3.2))
  x = np.arange(len(tasks))
  base = summary.get("baseline")
  _bars(ax, x, summary, tasks, metrics, -0.2 if base else 0.0, summary["model"])
  if base:
    _bars(ax, x, base, tasks, metrics, 0.2, base["model"])
  ax.set_xticks(x, [f"{t}\n({m})" for t, m in zip(tasks, metrics)], fontsize=8)
  ax.set_title(f"test metrics, mean ± 95% CI over {summary.get('num_seeds', 1)} seed(s)")
  ax.legend(fontsize=8)
  fig.tight_layout()
  _save(fig, path)


def plot_delta_m(summary: dict, path: str) -> None:
  """Δm% of every seed, their mean and its 95% CI (needs a baseline)."""
  per = summary.get("delta_m_per_seed", [])
  fig, ax = plt.subplots(figsize=(4.0, 3.0))
  ax.axhline(0.0, color="gray", linewidth=0.8)
  ax.scatter(np.zeros(len(per)) + np.linspace(-0.1, 0.1, len(per)), per, s=14, alpha=0.7)
  ci = summary.get("delta_m_ci95")
  lo, hi = (ci or [summary["delta_m"]] * 2)[0], (ci or [summary["delta_m"]] * 2)[1]
  yerr = [[summary["delta_m"] - lo], [hi - summary["delta_m"]]]
  ax.errorbar([0.3], [summary["delta_m"]], yerr=yerr, fmt="o", color="k", capsize=4)
  ax.set_xticks([0, 0.3], ["seeds", "mean ± CI"])
  ax.set_xlim(-0.4, 0.7)
  ax.set_ylabel(f"Δm% ({summary['model']} vs {summary['baseline']['model']})")
  fig.tight_layout()
  _save(fig, path)


def draw_all(workdir: str) -> list[str]:
  """Draws every plot the workdir's files allow; returns the paths written."""
  with open(os.path.join(workdir, "summary.json")) as f:
    summary = json.load(f)
  runs = {summary["model"]: read_log(os.path.join(workdir, "metrics.jsonl"))}
  if "baseline" in summary:
    runs[summary["baseline"]["model"]] = read_log(
      os.path.join(workdir, "baseline", "metrics.jsonl")
    )
  paths = [os.path.join(workdir, name) for name in FILES]
  plot_curves(runs, list(summary["tasks"]), paths[0])
  plot_test_metrics(summary, paths[1])
  if "delta_m" in summary:
    plot_delta_m(summary, paths[2])
  return [p for p in paths if os.path.exists(p)]
