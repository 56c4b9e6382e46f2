"""Compile time, step time and memory as the number of tasks T grows, as JSON lines.

Trains the library's own path (``experiment.prepare_run`` + ``train.make_chunk``): a
hard-sharing MLP on MMoE synthetic regression with T tasks, every task every step (K = T).
Each T runs in a fresh subprocess so the peak RSS is its own.

    python benchmarks/many_tasks.py                    # T in {10, 100, 1000}
    python benchmarks/many_tasks.py --tasks=10,100 --steps=20
    python benchmarks/many_tasks.py --compile_default=2,200   # the default config's step

Prints one line per T:
{"bench": "many_tasks", "T", "compile_s", "median_step_ms", "peak_rss_mb", "device_peak_mb"}
(``device_peak_mb`` is null where the backend has no memory stats, e.g. CPU), and with
``--compile_default`` one line per T: {"bench": "compile_default_step", "T", "compile_s"}
for the default config's step (hard sharing, 128-wide MLP, batch 32) on rotated digits
with T rotation angles.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _config(t: int, default_step: bool):
  sys.path.insert(0, str(ROOT))
  from experiments.configs import default

  config = default.get_config()
  config.baseline = ""
  if default_step:  # the default job's step, only the number of rotated-digit tasks varies
    config.taskset_kwargs = {"angles": [360.0 * i / t for i in range(t)]}
  else:
    config.taskset = "mmoe_regression"
    config.taskset_kwargs = {"num_tasks": t, "dim": 16, "n_train": 64, "n_test": 32}
    config.model_kwargs.width = 64
    config.batch_size = 16
  return config


def measure(t: int, steps: int, repeats: int, default_step: bool) -> dict:
  import jax

  from mtl_jax import experiment
  from mtl_jax.train import make_chunk

  config = _config(t, default_step)
  taskset = experiment.build_taskset(config)
  run = experiment.prepare_run(config, taskset, config.model, config.method)
  chunk = make_chunk(run.train_step, steps)
  t0 = time.perf_counter()
  compiled = chunk.lower(run.state).compile()
  compile_s = time.perf_counter() - t0
  out = {
    "bench": "compile_default_step" if default_step else "many_tasks",
    "T": t,
    "compile_s": round(compile_s, 3),
  }
  if default_step:
    return out
  state = run.state
  state, m = compiled(state)  # warm-up
  jax.block_until_ready(m)
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    state, m = compiled(state)
    jax.block_until_ready(m)
    times.append((time.perf_counter() - t0) / steps * 1e3)
  stats = jax.devices()[0].memory_stats() or {}
  peak_dev = stats.get("peak_bytes_in_use")
  out.update(
    {
      "median_step_ms": round(statistics.median(times), 3),
      # ru_maxrss is KiB on Linux: the whole process's peak (data, compiler, runtime).
      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
      "device_peak_mb": None if peak_dev is None else round(peak_dev / 2**20, 1),
      "steps_per_chunk": steps,
      "backend": jax.default_backend(),
    }
  )
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--tasks", default="10,100,1000")
  parser.add_argument("--steps", type=int, default=50, help="steps per timed chunk")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--compile_default", default="", help="e.g. 2,200")
  parser.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)
  parser.add_argument("--default_step", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.one:  # child process: one measurement
    print(json.dumps(measure(args.one, args.steps, args.repeats, args.default_step)), flush=True)
    return
  jobs = [(int(t), False) for t in args.tasks.split(",") if t]
  jobs += [(int(t), True) for t in args.compile_default.split(",") if t]
  for t, default_step in jobs:
    cmd = [
      sys.executable,
      __file__,
      f"--one={t}",
      f"--steps={args.steps}",
      f"--repeats={args.repeats}",
    ] + (["--default_step"] if default_step else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=dict(os.environ))
    if proc.returncode:
      sys.exit(f"T={t} failed:\n{proc.stderr[-3000:]}")
    print(proc.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
  main()
