"""The grouping procedure's files: affinity.json/png, results.json, report.md; planted ARI."""

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from mtl_jax.tasks import TaskSet


def planted_ari(serving: Sequence[tuple[int, ...]], clusters: int) -> float:
  """Adjusted Rand index between planted clusters (task i in ``i % clusters``, as
  :func:`mtl_jax.data.synthetic.mmoe_regression` plants them) and the serving groups."""
  from sklearn.metrics import adjusted_rand_score  # noqa: PLC0415 (only here)

  groups = sorted(set(serving))
  return float(
    adjusted_rand_score(
      [i % clusters for i in range(len(serving))], [groups.index(g) for g in serving]
    )
  )


def write_json(path: str, doc: Any) -> None:
  """``doc`` as indented JSON, written atomically (a temporary file, then a rename)."""
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(doc, f, indent=2)
  os.replace(tmp, path)


def write_affinity(workdir: str, matrix: np.ndarray, names: Sequence[str], estimator: str):
  """``affinity.json`` (matrix, task names, estimator) and ``affinity.png`` (heatmap)."""
  import matplotlib  # noqa: PLC0415 (plotting only here)

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415

  doc = {
    "estimator": estimator,
    "tasks": list(names),
    "index": "affinity[i][j] = effect of task i's step on task j's loss",
    "affinity": np.asarray(matrix).tolist(),
  }
  write_json(os.path.join(workdir, "affinity.json"), doc)
  t = len(names)
  fig, ax = plt.subplots(figsize=(1.0 + 0.5 * t, 0.8 + 0.5 * t))
  off = np.asarray(matrix)[~np.eye(t, dtype=bool)]
  lim = float(np.abs(off).max()) if off.size else 1.0
  im = ax.imshow(matrix, cmap="RdBu", vmin=-lim, vmax=lim)
  ax.set_xticks(range(t), names, rotation=90)
  ax.set_yticks(range(t), names)
  ax.set_xlabel("task j (loss measured)")
  ax.set_ylabel("task i (step taken)")
  ax.set_title(f"inter-task affinity ({estimator})")
  fig.colorbar(im, ax=ax)
  fig.tight_layout()
  fig.savefig(os.path.join(workdir, "affinity.png"), dpi=100)
  plt.close(fig)


def report_table(taskset: TaskSet, results: dict) -> str:
  """Markdown: each task's primary test metric under every training option, and Δm%."""
  options = [k for k in ("all", "alone", "tag", "exhaustive") if k in results["options"]]
  head = "| task | metric | " + " | ".join(options) + " |"
  lines = [head, "|" + "---|" * (len(options) + 2)]
  for spec in taskset.specs:
    m = spec.primary_metric
    vals = [f"{results['options'][o]['tasks'][spec.name][m]:.4f}" for o in options]
    lines.append(f"| {spec.name} | {m} | " + " | ".join(vals) + " |")
  dms = [f"{results['options'][o]['delta_m']:+.2f}" for o in options]
  lines.append("| Δm% vs alone | | " + " | ".join(dms) + " |")
  return "\n".join(lines)


def seeds_lines(seeds: dict) -> list[str]:
  """The report's lines for the seed study (per estimator: ARI mean, 95% CI, per seed)."""
  n = len(seeds["seeds"])
  secs = sum(seeds["affinity_run_seconds"])
  lines = [
    f"Over {n} seeds (run seeds {seeds['seeds']}, data seeds {seeds['data_seeds']}; "
    f"{n} affinity runs, {secs:.0f} s):"
  ]
  for est, aris in seeds.get("planted_ari", {}).items():
    ci = seeds["ari_ci95"][est]
    ci_text = f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "(one seed)"
    hits = sum(a == 1.0 for a in aris)
    per = ", ".join(f"{a:.2f}" for a in aris)
    lines.append(
      f"- {est}: ARI {seeds['ari_mean'][est]:.3f} {ci_text}, exact recovery {hits}/{n} ({per})"
    )
  if "planted_ari" not in seeds:
    for est, groups in seeds["groups"].items():
      lines.append(f"- {est}: groups per seed {groups}")
  return lines


def render_report(taskset: TaskSet, results: dict) -> str:
  """``report.md``: the chosen groups, Δm% for every k, the seed study and the table."""
  sel = results["selections"][str(results["num_groups"])]
  by_k = ", ".join(f"k={n}: {v['delta_m']:+.2f}" for n, v in results["tag_by_k"].items())
  lines = [
    f"# Task grouping (TAG) on {taskset.name}",
    "",
    f"Affinity estimator: {results['estimator']} ({results['measured_steps']} measured steps).",
    f"Selected groups (k = {results['num_groups']}): {sel}",
    f"Δm% vs alone of the TAG grouping for every k: {by_k}",
  ]
  if "planted_ari" in results:
    lines.append(f"Adjusted Rand index against the planted clusters: {results['planted_ari']:.3f}")
  if "exhaustive" in results["options"]:
    ex = results["options"]["exhaustive"]
    lines.append(f"Best of {ex['num_partitions']} partitions (trained): {ex['groups']}")
  if "seeds" in results:
    lines += [""] + seeds_lines(results["seeds"])
  return "\n".join(lines + ["", report_table(taskset, results), ""])
