"""Wall time of N seeds in one compiled program vs one seed, as JSON lines.

Trains the default job's step (hard sharing, 128-wide MLP, rotated digits, T = 4, batch
32, Adam) through the library's own path (``build.prepare_run`` + ``train.make_chunk``
with ``config.num_seeds = N``), ``--steps`` steps per N after one warm-up chunk (compile).

    python benchmarks/seeds.py                 # N in {1, 4, 16}
    python benchmarks/seeds.py --seeds=1,8 --steps=500

Prints one line per N: {"bench": "seeds", "num_seeds", "compile_s", "train_s",
"steps_per_s", "ratio_to_one_seed"}; the goal is 16 seeds <= 4x one seed on 2 CPU cores.
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _time(num_seeds: int, steps: int) -> dict:
  sys.path.insert(0, str(ROOT))
  import jax

  from experiments.configs import default
  from mtl_jax import build
  from mtl_jax.train import make_chunk

  config = default.get_config()
  config.baseline = ""
  config.num_seeds = num_seeds
  run = build.prepare_run(config, build.build_taskset(config))
  chunk = make_chunk(run.train_step, steps, num_seeds)
  t0 = time.perf_counter()
  state, m = chunk(run.state)
  jax.block_until_ready(m)
  compile_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  state, m = chunk(state)
  jax.block_until_ready(m)
  train_s = time.perf_counter() - t0
  return {"num_seeds": num_seeds, "compile_s": round(compile_s - train_s, 3), "train_s": train_s}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--seeds", default="1,4,16")
  parser.add_argument("--steps", type=int, default=300)
  args = parser.parse_args()
  one = None
  for n in [int(s) for s in args.seeds.split(",")]:
    r = _time(n, args.steps)
    one = one or (r["train_s"] if n == 1 else None)
    r.update(
      bench="seeds",
      steps=args.steps,
      train_s=round(r["train_s"], 3),
      steps_per_s=round(args.steps / r["train_s"], 1),
      ratio_to_one_seed=round(r["train_s"] / one, 2) if one else None,
    )
    print(json.dumps(r), flush=True)


if __name__ == "__main__":
  main()
