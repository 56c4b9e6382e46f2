"""The cost of TAG's affinity measurement as a ratio to a plain training step, as JSON lines.

Trains the grouping experiment's task set (MMoE regression, T = 9 planted-cluster tasks,
``experiments/configs/grouping.py``) with the library's own path, once with plain steps
and once with :func:`mtl_jax.grouping.affinity_step` measuring every ``--every`` steps
(all T lookaheads as one vmap inside the compiled step), and times compiled chunks.

    python benchmarks/grouping.py                  # every = 10
    python benchmarks/grouping.py --every=1,10 --steps=200 --width=64

Prints one line per setting: {"bench": "grouping_affinity", "T", "every", "width",
"plain_step_ms", "affinity_step_ms", "ratio", "median_ratio"} (ratio = affinity_step_ms /
plain_step_ms, each the fastest of ``--repeats`` interleaved chunks of ``--steps``
steps; ``median_ratio`` the same with medians).
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _time(fn, state, steps: int) -> tuple[object, float]:
  import jax

  t0 = time.perf_counter()
  state, m = fn(state)
  jax.block_until_ready((state, m))
  return state, (time.perf_counter() - t0) / steps * 1e3


def measure(t: int, every: int, width: int, steps: int, repeats: int) -> dict:
  from experiments.configs import grouping as grouping_config
  from mtl_jax import build, grouping
  from mtl_jax.train import make_chunk

  config = grouping_config.get_config()
  config.taskset_kwargs.num_tasks = t
  config.model_kwargs.width = width
  taskset = build.build_taskset(config)
  plain = build.prepare_run(config, taskset)
  run = build.prepare_run(config, taskset)
  step, aff_state = grouping.make_affinity_step(run, every)
  fns = {"plain": make_chunk(plain.train_step, steps), "affinity": make_chunk(step, steps)}
  states = {"plain": plain.state, "affinity": aff_state}
  times = {"plain": [], "affinity": []}
  for r in range(repeats + 1):  # interleaved, so load from other processes hits both alike
    for key in fns:
      states[key], ms = _time(fns[key], states[key], steps)
      if r:  # the first chunk compiles
        times[key].append(ms)
  # The minimum: the least disturbed chunk (CPU time on a shared machine is noisy).
  plain_ms, aff_ms = min(times["plain"]), min(times["affinity"])
  return {
    "bench": "grouping_affinity",
    "T": t,
    "every": every,
    "width": width,
    "batch_size": config.batch_size,
    "plain_step_ms": round(plain_ms, 4),
    "affinity_step_ms": round(aff_ms, 4),
    "ratio": round(aff_ms / plain_ms, 3),
    "median_ratio": round(
      statistics.median(times["affinity"]) / statistics.median(times["plain"]), 3
    ),
  }


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--tasks", type=int, default=9)
  parser.add_argument("--every", default="10", help="comma-separated affinity_every values")
  parser.add_argument("--width", type=int, default=8, help="trunk width (the config's: 8)")
  parser.add_argument("--steps", type=int, default=100, help="steps per timed chunk")
  parser.add_argument("--repeats", type=int, default=10)
  args = parser.parse_args()
  for every in [int(e) for e in args.every.split(",")]:
    print(json.dumps(measure(args.tasks, every, args.width, args.steps, args.repeats)), flush=True)


if __name__ == "__main__":
  main()
