"""What a transfer study writes: summary.json, report.md and three plots.

* ``adaptation_curve.png`` — test metric vs n examples per class (log x), one line per
  arm, a band for the 95% CI over seeds;
* ``practices.png`` — each practice's paired difference from plain fine-tuning, with CIs;
* ``cv.png`` — mean validation metric ± std over folds for every grid point, the chosen
  one marked.
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mtl_jax import writers  # noqa: E402
from mtl_jax.tasks import TaskSet  # noqa: E402
from mtl_jax.transfer import splits  # noqa: E402

PLOTS = ("adaptation_curve.png", "practices.png", "cv.png")
ARMS = ("scratch", "stl_pretrained", "mtl_pretrained", "linear_probe")


def target_info(ts: TaskSet) -> dict:
  """The held-out task: name, loss, D^tr_b / D^test_b sizes, the largest n per class."""
  n_tr, n_te = int(ts.n_train[0]), int(ts.n_test[0])
  spec = ts.specs[0]
  return {
    "task": spec.name,
    "loss": spec.loss,
    "train_examples": n_tr,
    "test_examples": n_te,
    "max_per_class": splits.max_per_class(ts.y_train[0, :n_tr], spec.loss),
  }


def _pm(d: dict, digits: int = 3) -> str:
  return f"{d['mean']:.{digits}f} ± {(d['ci95'][1] - d['ci95'][0]) / 2:.{digits}f}"


def _n_label(summary: dict) -> str:
  return "n (examples)" if summary["target"]["loss"] == "mse" else "n per class"


def curve_table(summary: dict, key: str = "curve") -> str:
  """Markdown: one row per arm, one column per n (mean ± CI half-width)."""
  curve = summary[key]
  ns = sorted(next(iter(curve.values())), key=int)
  head = [_n_label(summary)] + [
    n + (" (all)" if summary["n_per_class"][n]["all"] else "") for n in ns
  ]
  lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
  for arm, by_n in curve.items():
    lines.append(f"| {arm} | " + " | ".join(_pm(by_n[n]) for n in ns) + " |")
  return "\n".join(lines)


def practices_table(p: dict) -> str:
  lines = [f"| practice | test {p['metric']} | paired Δ vs reference |", "|---|---|---|"]
  for r in p["rows"]:
    lines.append(f"| {r['practice']} | {_pm(r['test'])} | {_pm(r['delta_vs_reference'], 3)} |")
  return "\n".join(lines)


def cv_table(cv: dict) -> str:
  lines = [
    f"| learning_rate | layer_decay | freeze_layers | val {cv['metric']} (mean ± std over folds) |",
    "|---|---|---|---|",
  ]
  for r in cv["table"]:
    best = all(r[k] == v for k, v in cv["best"].items())
    cell = f"{r['val_mean']:.3f} ± {r['val_std']:.3f}" + (" **best**" if best else "")
    lines.append(
      f"| {r['learning_rate']:g} | {r['layer_decay']:g} | {r['freeze_layers']} | {cell} |"
    )
  return "\n".join(lines)


def markdown(summary: dict) -> str:
  t, m = summary["target"], summary["metric"]
  cv = summary["cv"]
  return "\n".join(
    [
      f"# Transfer to {t['task']} ({t['train_examples']} training examples, "
      f"{t['test_examples']} test)",
      "",
      f"Test {m} (mean ± 95% CI over {summary['num_seeds']} seeds) vs {_n_label(summary)}:",
      "",
      curve_table(summary),
      "",
      "Paired difference from scratch (same seed: same subset, same new head; > 0: better):",
      "",
      curve_table(summary, "curve_delta_vs_scratch"),
      "",
      f"Practices at {_n_label(summary)} = {summary['practices']['n_per_class']} "
      "(multi-task source):",
      "",
      practices_table(summary["practices"]),
      "",
      f"{cv['folds']}-fold CV on D^tr_b ({cv['rows']} rows); best retrained on all of it: "
      f"test {m} {_pm(cv['test'])}",
      "",
      cv_table(cv),
    ]
  )


def plot_curve(summary: dict, path: str) -> None:
  fig, ax = plt.subplots(figsize=(6.0, 4.0))
  for arm, by_n in summary["curve"].items():
    ns = sorted(by_n, key=int)
    xs = [int(n) for n in ns]
    line = ax.plot(xs, [by_n[n]["mean"] for n in ns], marker="o", label=arm)[0]
    lo, hi = zip(*[by_n[n]["ci95"] for n in ns])
    ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
  ax.set_xscale("log")
  ax.set_xlabel(f"target training examples: {_n_label(summary)}")
  ax.set_ylabel(f"test {summary['metric']} on {summary['target']['task']}")
  ax.set_title(f"adaptation curve, 95% CI over {summary['num_seeds']} seeds", fontsize=9)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_practices(p: dict, path: str) -> None:
  rows = p["rows"][1:]
  fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(rows) + 1.2))
  means = [r["delta_vs_reference"]["mean"] for r in rows]
  err = np.array(
    [
      [m - r["delta_vs_reference"]["ci95"][0], r["delta_vs_reference"]["ci95"][1] - m]
      for m, r in zip(means, rows)
    ]
  ).T
  ax.barh(range(len(rows)), means, xerr=err, capsize=3)
  ax.axvline(0.0, color="gray", linewidth=0.8)
  ax.set_yticks(range(len(rows)), [r["practice"] for r in rows], fontsize=7)
  ax.set_xlabel(f"paired Δ test {p['metric']} vs plain fine-tuning (n = {p['n_per_class']})")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_cv(cv: dict, path: str) -> None:
  rows = cv["table"]
  fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(rows) + 1.5), 3.2))
  colors = ["C1" if all(r[k] == v for k, v in cv["best"].items()) else "C0" for r in rows]
  ax.bar(
    range(len(rows)),
    [r["val_mean"] for r in rows],
    yerr=[r["val_std"] for r in rows],
    color=colors,
    capsize=2,
  )
  labels = [f"{r['learning_rate']:g}/{r['layer_decay']:g}/{r['freeze_layers']}" for r in rows]
  ax.set_xticks(range(len(rows)), labels, rotation=90, fontsize=6)
  ax.set_xlabel("learning_rate / layer_decay / freeze_layers")
  ax.set_ylabel(f"val {cv['metric']} (± std, {cv['folds']} folds)")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def write(workdir: str, summary: dict) -> None:
  """summary.json (with the markdown ``report``), report.md and the plots."""
  summary["report"] = markdown(summary)
  writers.write_json(os.path.join(workdir, "summary.json"), summary)
  if not writers.is_writer():
    return
  with open(os.path.join(workdir, "report.md"), "w") as f:
    f.write(summary["report"] + "\n")
  plot_curve(summary, os.path.join(workdir, PLOTS[0]))
  plot_practices(summary["practices"], os.path.join(workdir, PLOTS[1]))
  plot_cv(summary["cv"], os.path.join(workdir, PLOTS[2]))
