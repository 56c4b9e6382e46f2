"""Training steps/s of the streaming data path vs the on-device path, as JSON lines.

Trains the default job (hard sharing, 128-wide MLP, rotated digits, T = 4, batch 32, Adam,
one seed) through the library's own loop (``build.prepare_run`` + ``loop.train_run``) on a
task set that fits the device both ways: once with ``data_path = "device"`` (batches
sampled inside the jitted step) and once with ``data_path = "stream"`` (batches gathered
on the host from the same ids, prefetched by a thread, scanned over), and streamed again
with a budget that cuts each logging chunk into pieces of ``--piece_steps`` steps (more
transfers and dispatches per chunk). Steps/s come from ``metrics.jsonl``'s ``elapsed_s``,
leaving out the first chunk (compilation); no evaluation. Each variant runs ``--repeats``
times, interleaved (a loaded machine then slows every variant alike); the median counts.

    python benchmarks/streaming.py
    python benchmarks/streaming.py --steps=3000 --log_every=200 --taskset=digit_attributes

Prints one line per variant: {"bench": "streaming", "variant", "taskset", "steps",
"log_every", "piece_steps", "repeats", "steps_per_s" (median), "steps_per_s_each",
"ratio_to_device" (median steps/s over the on-device path's)}.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _steps_per_s(args, path: str, budget_mb: float) -> tuple[float, int]:
  sys.path.insert(0, str(ROOT))
  from experiments.configs import default
  from mtl_jax import build, loop

  config = default.get_config(f"taskset={args.taskset}")
  config.baseline = ""
  config.num_seeds = 1
  config.num_steps = args.steps + args.log_every  # the first chunk compiles
  config.log_every = args.log_every
  config.data_path, config.device_data_budget_mb = path, budget_mb
  run = build.prepare_run(config, build.build_taskset(config))
  piece = min(run.stream.max_steps(), args.log_every) if run.stream is not None else None
  with tempfile.TemporaryDirectory() as tmp:
    log = os.path.join(tmp, "metrics.jsonl")
    loop.train_run(run, log, progress=False, evaluate=False)
    with open(log) as f:
      records = [json.loads(line) for line in f]
  first, last = records[0], records[-1]
  return (last["step"] - first["step"]) / (last["elapsed_s"] - first["elapsed_s"]), piece


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=2000, help="timed steps (after one chunk)")
  parser.add_argument("--log_every", type=int, default=100)
  parser.add_argument("--piece_steps", type=int, default=10)
  parser.add_argument("--taskset", default="rotated_digits")
  parser.add_argument("--repeats", type=int, default=3, help="runs per variant (median)")
  args = parser.parse_args()
  sys.path.insert(0, str(ROOT))
  import numpy as np

  from experiments.configs import default
  from mtl_jax import build
  from mtl_jax.data import sampling, streaming

  config = default.get_config(f"taskset={args.taskset}")
  ts = build.build_taskset(config)
  host = [sampling.DeviceData.from_taskset(ts, np.asarray)]
  k = config.tasks_per_batch or ts.num_tasks
  step_bytes = streaming.Stream(host, k, config.batch_size, ts.shared_inputs, 1).step_bytes()
  small_mb = args.piece_steps * step_bytes * streaming.PIECE_FRACTION / 2**20  # such pieces
  variants = [
    ("device", "device", streaming.DEFAULT_BUDGET_MB),
    ("stream", "stream", streaming.DEFAULT_BUDGET_MB),
    ("stream_small_pieces", "stream", small_mb),
  ]
  rates, pieces = {v[0]: [] for v in variants}, {}
  for _ in range(args.repeats):  # interleaved, so a load change hits every variant alike
    for variant, path, budget in variants:
      rate, pieces[variant] = _steps_per_s(args, path, budget)
      rates[variant].append(rate)
  device = float(np.median(rates["device"]))
  for variant, _, _ in variants:
    rate = float(np.median(rates[variant]))
    record = {
      "bench": "streaming",
      "variant": variant,
      "taskset": args.taskset,
      "steps": args.steps,
      "log_every": args.log_every,
      "piece_steps": pieces[variant],
      "repeats": args.repeats,
      "steps_per_s": round(rate, 1),
      "steps_per_s_each": [round(r, 1) for r in rates[variant]],
      "ratio_to_device": round(rate / device, 3),
    }
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
  main()
