"""The lecture's claims as experiments: each writes results.json, report.md and a plot.

* :func:`negative_transfer` — Δm% vs task relatedness for architectures at matched size;
* :func:`overfitting` — train/test gap and test error vs how much is shared × data size;
* :func:`label_scaling` — regression tasks 1000× apart, with and without standardising.

Every number is per seed (``config.num_seeds`` seeds in one program per arm) with a mean
and a 95% Student-t interval; comparisons against a reference arm are paired by seed.
"""

import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import ml_collections  # noqa: E402

from mtl_jax import build  # noqa: E402
from mtl_jax.configs import component_kwargs  # noqa: E402
from mtl_jax.studies import (  # noqa: E402
  arm_config,
  count_total,
  describe,
  fmt,
  match_width,
  mean_metric,
  paired_delta_m,
  run_arm,
)


def _write(workdir: str, results: dict, table: str) -> None:
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  with open(os.path.join(workdir, "report.md"), "w") as f:
    f.write(table + "\n")
  print(table)


def _table(rows: list[dict], row_key: str, col_key: str, cell, title: str) -> str:
  cols = sorted({r[col_key] for r in rows})
  names = list(dict.fromkeys(r[row_key] for r in rows))
  lines = [title, "", f"| {row_key} | " + " | ".join(f"{col_key} {c:g}" for c in cols) + " |"]
  lines.append("|---" * (len(cols) + 1) + "|")
  for n in names:
    by = {r[col_key]: r for r in rows if r[row_key] == n}
    lines.append(f"| {n} | " + " | ".join(cell(by[c]) if c in by else "" for c in cols) + " |")
  return "\n".join(lines)


def _plot_lines(rows, row_key, x_key, y_key, ylabel, path, logx=False) -> None:
  fig, ax = plt.subplots(figsize=(6.0, 4.0))
  for name in dict.fromkeys(r[row_key] for r in rows):
    pts = sorted((r[x_key], r[y_key]) for r in rows if r[row_key] == name)
    xs, ds = [p[0] for p in pts], [p[1] for p in pts]
    line = ax.plot(xs, [d["mean"] for d in ds], marker="o", label=name)[0]
    if all(d["ci95"] for d in ds):
      lo, hi = [d["ci95"][0] for d in ds], [d["ci95"][1] for d in ds]
      ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
  ax.axhline(0.0, color="gray", linewidth=0.8) if "Δm" in ylabel else None
  ax.set_xscale("log") if logx else None
  ax.set_xlabel(x_key)
  ax.set_ylabel(ylabel)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _sized_arm(cfg, taskset, label: str, spec: dict, target: int) -> tuple:
  name = spec.get("model", label)
  cfg_a = arm_config(cfg, name, {k: v for k, v in spec.items() if k != "model"})
  kwargs = component_kwargs(cfg_a, "model")
  cfg_a.model_kwargs.width = match_width(name, kwargs, taskset, target)
  return cfg_a, name, count_total(name, component_kwargs(cfg_a, "model"), taskset)


def negative_transfer(
  base: ml_collections.ConfigDict, arms: list, correlations: list[float], workdir: str
) -> dict:
  """Δm% (paired per seed vs ``independent``) of every arm at every correlation.

  Each arm's width is chosen so its total parameter count is closest to the independent
  networks' (``base.model_kwargs``); the counts and their ratio are in the rows.
  """
  rows = []
  for c in correlations:
    cfg = ml_collections.ConfigDict(base.to_dict())
    cfg.taskset_kwargs.correlation = c
    taskset = build.build_taskset(cfg)
    ref_cfg = arm_config(cfg, "independent", {})
    target = count_total("independent", component_kwargs(ref_cfg, "model"), taskset)
    ref = run_arm(ref_cfg, taskset)
    for label, spec in arms:
      cfg_a, name, n = _sized_arm(cfg, taskset, label, spec, target)
      res = run_arm(cfg_a, taskset)
      row = {"arm": label, "model": name, "correlation": c, "width": cfg_a.model_kwargs.width}
      row.update(params=n, target_params=target, param_ratio=round(n / target, 3))
      row["delta_m"] = describe(paired_delta_m(taskset, res["test"], ref["test"]))
      row["test_mse"] = describe(mean_metric(res["test"], "mse"))
      rows.append(row)
      print(f"corr {c:g} {label}: {n} params ({n / target:.2f}x), Δm% {fmt(row['delta_m'])}")
  seeds = base.num_seeds
  title = (
    f"Δm% vs independent (mean ± 95% CI over {seeds} seeds, paired), {base.num_steps} "
    f"steps, T = {base.taskset_kwargs.num_tasks}; all arms sized to the independent "
    f"networks' {rows[0]['target_params'] if rows else 0} parameters (±10%)"
  )
  table = _table(rows, "arm", "correlation", lambda r: fmt(r["delta_m"]), title)
  _write(workdir, {"rows": rows}, table)
  path = os.path.join(workdir, "delta_m_vs_correlation.png")
  _plot_lines(rows, "arm", "correlation", "delta_m", "Δm% vs independent", path)
  return {"rows": rows}


def overfitting(
  base: ml_collections.ConfigDict, shared_layers: list[int], sizes: list[int], workdir: str
) -> dict:
  """Train/test MSE and their gap vs how many trunk layers are shared × examples per task.

  ``split`` with k shared layers (k = 0: independent networks, k = depth: hard sharing),
  same widths throughout, so sharing more means fewer parameters to fit the same data.
  """
  rows = []
  for n in sizes:
    cfg = ml_collections.ConfigDict(base.to_dict())
    cfg.taskset_kwargs.n_train = n
    taskset = build.build_taskset(cfg)
    for k in shared_layers:
      res = run_arm(arm_config(cfg, "split", {"num_shared": k}), taskset, train_metrics=True)
      train, test = mean_metric(res["train"], "mse"), mean_metric(res["test"], "mse")
      rows.append(
        {
          "shared_layers": k,
          "n_train": n,
          "params": res["params"]["total"],
          "train_mse": describe(train),
          "test_mse": describe(test),
          "gap": describe([b - a for a, b in zip(train, test)]),
        }
      )
      print(f"n_train {n}, k = {k}: test MSE {fmt(rows[-1]['test_mse'], 3)}")
  title = (
    f"test MSE (mean ± 95% CI over {base.num_seeds} seeds; train/test gap in results.json) "
    f"by examples per task (columns) and shared layers k (rows; k = 0 is independent)"
  )
  table = _table(rows, "shared_layers", "n_train", lambda r: fmt(r["test_mse"], 3), title)
  _write(workdir, {"rows": rows}, table)
  for key, label in (("test_mse", "test MSE"), ("gap", "test − train MSE")):
    path = os.path.join(workdir, f"{key}_vs_n_train.png")
    _plot_lines(rows, "shared_layers", "n_train", key, label, path, logx=True)
  return {"rows": rows}


def label_scaling(base: ml_collections.ConfigDict, workdir: str) -> dict:
  """Per-task test R² of sinusoid tasks whose label scales differ 1000×, trained with and
  without per-task label standardisation (D^tr statistics), paired by seed."""
  rows = []
  for standardize in (True, False):
    cfg = ml_collections.ConfigDict(base.to_dict())
    cfg.taskset_kwargs.standardize_labels = standardize
    taskset = build.build_taskset(cfg)
    res = run_arm(arm_config(cfg, cfg.model, {}), taskset)
    for spec in taskset.specs:
      r2 = [seed[spec.name]["r2"] for seed in res["test"]]
      rows.append({"standardize": int(standardize), "task": spec.name, "test_r2": describe(r2)})
  title = (
    f"test R² per task (mean ± 95% CI over {base.num_seeds} seeds): labels standardised per "
    "task (1) or raw (0); amplitudes log-spaced 0.1 .. 100"
  )
  table = _table(rows, "task", "standardize", lambda r: fmt(r["test_r2"], 3), title)
  _write(workdir, {"rows": rows}, table)
  fig, ax = plt.subplots(figsize=(6.0, 3.5))
  for i, s in enumerate((1, 0)):
    part = [r for r in rows if r["standardize"] == s]
    xs = [j + 0.2 * (i * 2 - 1) for j in range(len(part))]
    ax.bar(xs, [r["test_r2"]["mean"] for r in part], 0.4, label=["raw", "standardised"][s])
  ax.set_xticks(range(len(part)), [r["task"] for r in part])
  ax.set_ylabel("test R²")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(workdir, "label_scaling.png"), dpi=110)
  plt.close(fig)
  return {"rows": rows}
