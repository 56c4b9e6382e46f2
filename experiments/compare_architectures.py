r"""Trains every registered architecture on one synthetic task set and prints a table.

  python -m experiments.compare_architectures
  python -m experiments.compare_architectures --num_steps=2000 --correlation=0.2 --seeds=3

Every model sees the same task set (``experiments/configs/synthetic.py``'s MMoE-style
regression, Ma et al. KDD 2018, unless overridden), the same steps, optimiser, batch size
and seeds; each architecture's hyperparameters are its builder's defaults plus the
per-model settings of ``experiments/configs/synthetic.py`` (its ``VARIANTS`` table). The
markdown table gives the parameter counts (θ^sh / θ^{1..T} / total), each task's test MSE
(original label units, mean over seeds) and Δm% against ``independent`` (Maninis et al.
2019; positive is better).
"""

import numpy as np
from absl import app, flags

from experiments.configs import synthetic
from mtl_jax import metrics as metrics_lib
from mtl_jax import models
from mtl_jax.experiment import build_taskset, run_one

flags.DEFINE_integer("num_steps", 1000, "Training steps for every architecture.")
flags.DEFINE_integer("seeds", 1, "Seeds per architecture (metrics are averaged).")
flags.DEFINE_integer("num_tasks", None, "Override the task set's number of tasks.")
flags.DEFINE_float("correlation", None, "Override the tasks' weight-vector correlation.")
flags.DEFINE_list("models", None, "Architectures to compare (default: every registered one).")
flags.DEFINE_string("out", None, "Also write the markdown table to this file.")
flags.DEFINE_bool("smoke", False, "A few steps of three architectures (a quick check).")
SMOKE_MODELS = ("independent", "hard_sharing", "mmoe")
FLAGS = flags.FLAGS


def model_config(name: str, base):
  """The architecture's settings (``synthetic.py:model=NAME``) on the common task set."""
  config = synthetic.get_config(f"model={name}")
  for key in (
    "seed",
    "taskset",
    "taskset_kwargs",
    "num_steps",
    "batch_size",
    "learning_rate",
    "optimizer",
    "tasks_per_batch",
    "log_every",
    "method",
    "method_kwargs",
  ):
    config[key] = base[key]
  config.baseline = ""
  return config


def main(argv):
  del argv
  base = synthetic.get_config()
  base.num_steps = min(FLAGS.num_steps, 6) if FLAGS.smoke else FLAGS.num_steps
  base.log_every = base.num_steps
  if FLAGS.num_tasks:
    base.taskset_kwargs.num_tasks = FLAGS.num_tasks
  if FLAGS.correlation is not None:
    base.taskset_kwargs.correlation = FLAGS.correlation
  taskset = build_taskset(base)
  names = FLAGS.models or (SMOKE_MODELS if FLAGS.smoke else models.names())
  names = ["independent"] + [n for n in names if n != "independent"]
  results = {}
  for name in names:
    runs = []
    for seed in range(FLAGS.seeds):
      config = model_config(name, base)
      config.seed = seed
      runs.append(run_one(config, taskset, name, config.method, progress=False))
    tasks = {
      t: {"mse": float(np.mean([r["tasks"][t]["mse"] for r in runs]))} for t in taskset.names
    }
    results[name] = {"tasks": tasks, "params": runs[0]["params"]}
    print(f"{name}: " + " ".join(f"{v['mse']:.4f}" for v in tasks.values()), flush=True)
  header = ["architecture", "θ^sh", "θ^{1..T}", "total"] + [f"{t} MSE" for t in taskset.names]
  header.append("Δm% vs independent")
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for name in names:
    r = results[name]
    dm, _ = metrics_lib.delta_m(taskset, r["tasks"], results["independent"]["tasks"])
    p = r["params"]
    row = [name, str(p["shared"]), str(p["task_specific"]), str(p["total"])]
    row += [f"{r['tasks'][t]['mse']:.4f}" for t in taskset.names] + [f"{dm:+.2f}"]
    lines.append("| " + " | ".join(row) + " |")
  table = (
    f"{taskset.name}, T = {taskset.num_tasks}, {base.num_steps} steps, "
    f"{FLAGS.seeds} seed(s)\n\n" + "\n".join(lines)
  )
  print(table)
  if FLAGS.out:
    with open(FLAGS.out, "w") as f:
      f.write(table + "\n")


if __name__ == "__main__":
  app.run(main)
