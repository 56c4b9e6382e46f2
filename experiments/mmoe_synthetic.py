r"""The MMoE paper's synthetic experiment (Ma et al., KDD 2018, §3.2 and §5.1).

  python -m experiments.mmoe_synthetic --workdir=/tmp/mmoe --seeds=5 --num_steps=2000 \
      --correlations=0.5,0.9,1.0 --regime=fixed
  python -m experiments.mmoe_synthetic --smoke --workdir=/tmp/mmoe_smoke

Two regression tasks on the same inputs (``mtl_jax.data.mmoe_paper``) with weight-vector
cosine ``correlation``; the shared-bottom model (``hard_sharing``) against MMoE (``mmoe``,
8 experts of 16 units, towers of 8, as in the paper), with roughly equal parameter counts.
All seeds of one (model, correlation) train in one vmapped program (``config.num_seeds``)
on one data set per correlation (seeded by ``--data_seed``; every correlation shares the
same x, α, β and noise draws). Regimes: ``fixed`` reuses ``--n_train`` examples (default
10k); ``fresh`` generates ``--fresh_factor`` × num_steps × batch_size training rows so
examples are (almost) never revisited (the sampler draws with replacement: with factor 1
about 63% of draws are first visits, 88% with factor 4).

Writes ``results.json`` (``{"rows": [{"model", "correlation", "regime",
"test_mse_per_seed", ...}]}``; test MSE in label units, averaged over the two tasks, per
task in ``test_mse_per_task``), ``report.md`` (median and IQR over seeds),
``test_mse.png`` and each run's ``logs/<model>_rho<p>.jsonl`` (training curves).
OMoE (one gate shared by the tasks) is not run: ``mmoe`` has no shared-gate option.
"""

import json
import os
import time

import ml_collections
import numpy as np
from absl import app, flags, logging

from experiments import cli
from experiments.configs import default
from mtl_jax import build, loop

# Paper §5.1: 8 experts, one layer of 16 units each, towers of one layer of 8 units. The
# library's hard_sharing has linear task heads (no towers); its width is chosen to match
# MMoE's total parameter count (14 818 vs 14 834 for d = 100).
MODELS = {
  "shared_bottom": ("hard_sharing", {"trunk": "mlp", "width": 144, "depth": 1}),
  "omoe": (
    "omoe",
    {"num_experts": 8, "width": 16, "depth": 1, "tower_width": 8, "tower_depth": 1},
  ),
  "mmoe": (
    "mmoe",
    {"num_experts": 8, "width": 16, "depth": 1, "tower_width": 8, "tower_depth": 1},
  ),
}
MISSING_MODELS: dict[str, str] = {}  # models of the paper this script cannot run (none now)
REGIMES = ("fixed", "fresh")
SMOKE = {"seeds": 2, "num_steps": 20, "n_train": 256, "n_test": 256, "correlations": ["0.5"]}

FLAGS = flags.FLAGS
# The settings a run takes (the flags' defaults); ``settings()`` gives them from Python.
DEFAULTS = {
  "seeds": 5,
  "num_steps": 2000,
  "correlations": ["0.5", "0.9", "1.0"],
  "regime": "fixed",
  "models": list(MODELS),
  "n_train": 10000,
  "n_test": 5000,
  "fresh_factor": 1,
  "batch_size": 32,
  "learning_rate": 1e-3,
  "data_seed": 0,
}


def define_flags() -> None:
  """The command line's flags (defined when run as a script, so modules import together)."""
  d = DEFAULTS
  flags.DEFINE_string("workdir", None, "Output directory (default: workdirs/mmoe_synthetic-TIME).")
  flags.DEFINE_integer(
    "seeds", d["seeds"], "Seeds per (model, correlation), vmapped in one program."
  )
  flags.DEFINE_integer("num_steps", d["num_steps"], "Training steps.")
  flags.DEFINE_list("correlations", d["correlations"], "Task correlations p = cos(w1, w2).")
  flags.DEFINE_string(
    "regime", d["regime"], "fixed: a fixed training set; fresh: (almost) no repeats."
  )
  flags.DEFINE_list("models", d["models"], "Models to compare.")
  flags.DEFINE_integer("n_train", d["n_train"], "Training examples in the fixed regime.")
  flags.DEFINE_integer("n_test", d["n_test"], "Test examples.")
  flags.DEFINE_integer(
    "fresh_factor", d["fresh_factor"], "fresh: training rows = factor x steps x batch size."
  )
  flags.DEFINE_integer("batch_size", d["batch_size"], "Examples per step (shared by both tasks).")
  flags.DEFINE_float("learning_rate", d["learning_rate"], "Adam learning rate.")
  flags.DEFINE_integer(
    "data_seed", d["data_seed"], "Seed of the data (one data set per correlation)."
  )
  flags.DEFINE_bool("smoke", False, "Tiny run (2 seeds, 20 steps, 256 examples) in seconds.")


def parse_correlations(values: list[str]) -> list[float]:
  """``["0.5", "1"]`` -> ``[0.5, 1.0]``; a non-number or a value outside [-1, 1] is an error."""
  out = []
  for v in values:
    try:
      p = float(v)
    except ValueError:
      raise ValueError(f"--correlations: {v!r} is not a number") from None
    if not -1.0 <= p <= 1.0:
      raise ValueError(f"--correlations: {p} is outside [-1, 1]")
    out.append(p)
  if not out:
    raise ValueError("--correlations: give at least one value, e.g. --correlations=0.5,1.0")
  return out


def check_settings(s: dict) -> None:
  """One-line ``ValueError`` for a setting the experiment cannot run with."""
  if s["regime"] not in REGIMES:
    raise ValueError(f"--regime must be one of {', '.join(REGIMES)}, got {s['regime']!r}")
  unknown = [m for m in s["models"] if m not in MODELS]
  if unknown:
    missing = {m: MISSING_MODELS[m] for m in unknown if m in MISSING_MODELS}
    why = f" ({'; '.join(f'{k}: {v}' for k, v in missing.items())})" if missing else ""
    raise ValueError(f"--models: unknown {unknown}{why}; valid: {', '.join(MODELS)}")
  for key in ("seeds", "num_steps", "n_train", "n_test", "fresh_factor", "batch_size"):
    if s[key] < 1:
      raise ValueError(f"--{key} must be >= 1, got {s[key]}")
  if not s["learning_rate"] > 0:
    raise ValueError(f"--learning_rate must be > 0, got {s['learning_rate']}")


def train_rows(s: dict) -> int:
  """Training examples: ``n_train`` (fixed) or fresh_factor × num_steps × batch_size."""
  if s["regime"] == "fresh":
    return s["fresh_factor"] * s["num_steps"] * s["batch_size"]
  return s["n_train"]


def make_config(s: dict, model: str, correlation: float) -> ml_collections.ConfigDict:
  """The run config of one (model, correlation): all seeds in one program, no baseline."""
  name, kwargs = MODELS[model]
  config = default.get_config()
  config.num_seeds = s["seeds"]
  config.taskset = "mmoe_paper"
  config.taskset_kwargs = ml_collections.ConfigDict(
    {"correlation": correlation, "n_train": train_rows(s), "n_test": s["n_test"]}
  )
  config.taskset_kwargs.seed = s["data_seed"]
  config.model = name
  config.model_kwargs = ml_collections.ConfigDict(kwargs)
  config.baseline = ""
  config.num_steps = s["num_steps"]
  config.batch_size = s["batch_size"]
  config.learning_rate = s["learning_rate"]
  # About 20 logged points; a divisor of num_steps so every chunk has one compiled size.
  config.log_every = next(
    d for d in range(max(1, s["num_steps"] // 20), 0, -1) if not s["num_steps"] % d
  )
  return config


def run_one(config, taskset, model: str, correlation: float, regime: str, log_path) -> dict:
  """Trains every seed of one model on one task set; the results row for it."""
  run = build.prepare_run(config, taskset)
  out = loop.train_run(run, log_path=log_path, progress=False, desc=model)
  per_task = {t: [seed[t]["mse"] for seed in out["tasks_per_seed"]] for t in taskset.names}
  mean = np.mean([per_task[t] for t in taskset.names], axis=0)
  return {
    "model": model,
    "correlation": float(correlation),
    "regime": regime,
    "test_mse_per_seed": [float(v) for v in mean],
    "test_mse_per_task": per_task,
    "library_model": config.model,
    "model_kwargs": config.model_kwargs.to_dict(),
    "params": out["params"],
    "n_train": int(taskset.n_train[0]),
    "train_time_s": out["train_time_s"],
    **spread(mean),
  }


def spread(values) -> dict:
  """Median, quartiles and IQR of a list of per-seed values."""
  q1, med, q3 = np.percentile(np.asarray(values, np.float64), [25, 50, 75])
  return {"median": float(med), "q1": float(q1), "q3": float(q3), "iqr": float(q3 - q1)}


def run_experiment(s: dict, workdir: str) -> list[dict]:
  """Every model at every correlation; one data set per correlation (seeded)."""
  os.makedirs(os.path.join(workdir, "logs"), exist_ok=True)
  rows = []
  for p in s["correlations"]:
    taskset = None
    for model in s["models"]:
      config = make_config(s, model, p)
      if taskset is None:
        taskset = build.build_taskset(config)
      log = os.path.join(workdir, "logs", f"{model}_rho{p}.jsonl")
      row = run_one(config, taskset, model, p, s["regime"], log)
      print(
        f"{model:>13} p={p:<5} params={row['params']['total']:>6} "
        f"median test MSE={row['median']:.4f} (IQR {row['iqr']:.4f}) {row['train_time_s']:.1f}s",
        flush=True,
      )
      rows.append(row)
  return rows


def markdown_table(rows: list[dict]) -> str:
  """Model × correlation -> median test MSE and IQR over seeds (a markdown table)."""
  corrs = sorted({r["correlation"] for r in rows}, reverse=True)
  models = list(dict.fromkeys(r["model"] for r in rows))
  cell = {(r["model"], r["correlation"]): r for r in rows}
  lines = [
    "| model | params | " + " | ".join(f"p = {p}" for p in corrs) + " |",
    "|---|---:|" + "---:|" * len(corrs),
  ]
  for m in models:
    params = next(r["params"]["total"] for r in rows if r["model"] == m)
    vals = [
      f"{cell[m, p]['median']:.4f} ({cell[m, p]['iqr']:.4f})" if (m, p) in cell else "–"
      for p in corrs
    ]
    lines.append(f"| {m} | {params} | " + " | ".join(vals) + " |")
  return "\n".join(lines)


def write_report(rows: list[dict], s: dict, path: str, wall_s: float) -> None:
  """``report.md``: the settings, the table (median (IQR) over seeds) and what is missing."""
  regime = f"{s['regime']} ({rows[0]['n_train'] if rows else '?'} training examples)"
  text = (
    "# MMoE synthetic experiment (Ma et al., KDD 2018)\n\n"
    f"Regime: {regime}; {s['seeds']} seeds; {s['num_steps']} steps of batch "
    f"{s['batch_size']}; Adam lr {s['learning_rate']}; data seed {s['data_seed']}; "
    f"wall time {wall_s:.0f} s.\n\n"
    "Test MSE (label units, mean of the two tasks): median (IQR) over seeds.\n\n"
    + markdown_table(rows)
    + "\n"
    + "".join(f"\nNot run: {k} ({v})." for k, v in MISSING_MODELS.items())
  )
  with open(path, "w") as f:
    f.write(text)


def plot(rows: list[dict], path: str) -> None:
  """Box + strip plot of per-seed final test MSE, per model at each correlation (PNG)."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  corrs = sorted({r["correlation"] for r in rows}, reverse=True)
  models = list(dict.fromkeys(r["model"] for r in rows))
  fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(corrs) * len(models) / 2, 3.6))
  width = 0.8 / len(models)
  for j, m in enumerate(models):
    pos = [i + (j - (len(models) - 1) / 2) * width for i in range(len(corrs))]
    data = [
      next((r["test_mse_per_seed"] for r in rows if r["model"] == m and r["correlation"] == p), [])
      for p in corrs
    ]
    ax.boxplot(data, positions=pos, widths=width * 0.8, showfliers=False)
    for x, d in zip(pos, data):
      ax.scatter(
        np.full(len(d), x), d, s=10, alpha=0.7, color=f"C{j}", label=m if x == pos[0] else None
      )
  ax.set_xticks(range(len(corrs)), [f"p = {p}" for p in corrs])
  ax.set_ylabel("test MSE (mean of 2 tasks)")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def settings(smoke: bool = False, **over) -> dict:
  """The run's settings from Python: :data:`DEFAULTS` (``smoke``: :data:`SMOKE`), then
  ``over``; checked like the flags."""
  s = {**DEFAULTS, **(SMOKE if smoke else {}), **over}
  s["models"] = list(s["models"])
  s["correlations"] = parse_correlations([str(c) for c in s["correlations"]])
  check_settings(s)
  return s


def run(s: dict, workdir: str) -> list[dict]:
  """Trains every (model, correlation) of settings ``s`` and writes ``results.json``,
  ``report.md`` and ``test_mse.png`` into ``workdir``; the rows."""
  t0 = time.time()
  os.makedirs(workdir, exist_ok=True)
  rows = run_experiment(s, workdir)
  wall = time.time() - t0
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(
      {"rows": rows, "settings": s, "missing_models": MISSING_MODELS, "wall_s": wall}, f, indent=1
    )
  write_report(rows, s, os.path.join(workdir, "report.md"), wall)
  plot(rows, os.path.join(workdir, "test_mse.png"))
  print(markdown_table(rows))
  print(f"results: {os.path.abspath(os.path.join(workdir, 'results.json'))} ({wall:.0f} s)")
  return rows


def settings_from_flags() -> dict:
  """The run's settings from the flags (``--smoke`` shrinks them); checked."""
  s = {k: FLAGS[k].value for k in ("seeds", "num_steps", "regime", "models", "n_train", "n_test")}
  s.update(
    {k: FLAGS[k].value for k in ("fresh_factor", "batch_size", "learning_rate", "data_seed")}
  )
  s["correlations"] = FLAGS.correlations
  if FLAGS.smoke:  # the smoke sizes, except where a flag is given
    s.update({k: v for k, v in SMOKE.items() if not FLAGS[k].present})
  s["correlations"] = parse_correlations(s["correlations"])
  check_settings(s)
  return s


def main(argv):
  del argv
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  try:
    s = settings_from_flags()
  except ValueError as e:
    cli.fail(e)
  workdir = FLAGS.workdir or os.path.join("workdirs", time.strftime("mmoe_synthetic-%Y%m%d-%H%M%S"))
  try:
    run(s, workdir)
  except (OSError, ValueError) as e:  # an unwritable workdir, a model that cannot be built
    cli.fail(e)
  except loop.NonFiniteError as e:
    cli.fail(e, code=1)


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=cli.parse_flags)
