"""Wall time of N seeds in one compiled program vs one seed, as JSON lines.

Trains a config's step (default: the default job's hard sharing, 128-wide MLP, rotated
digits, T = 4, batch 32, Adam) through the library's own path (``build.prepare_run`` +
``train.make_chunk`` with ``config.num_seeds = N``), ``--steps`` steps per N after one
warm-up chunk (compile); the best of ``--repeats`` timed chunks is kept.

    python benchmarks/seeds.py                 # N in {1, 4, 16}
    python benchmarks/seeds.py --seeds=1,8 --steps=500
    python benchmarks/seeds.py --config=experiments/configs/synthetic.py

Two references put the ratio in context, since N seeds do N times the arithmetic:

* ``same_work``: ONE seed with an N-times larger batch (``batch_size * N``): the same
  FLOPs in one program without the seed axis. ``ratio_to_same_work`` near 1 means the
  seed axis itself costs nothing and the time is the arithmetic's.
* ``matmul_gflops``: the machine's throughput on one large float32 matmul (2048³), an
  optimistic ceiling for any program here. ``floor_ratio = N * gflops(1 seed) /
  matmul_gflops`` is then a lower bound on the N-seed ratio: how fast N seeds could be if
  every FLOP ran at that ceiling.

FLOPs per step come from XLA's cost analysis of one compiled step (``flops_per_step``).
Prints one line per N: {"bench": "seeds", "num_seeds", "compile_s", "train_s",
"steps_per_s", "ratio_to_one_seed", "flops_per_step", "gflops", "same_work_ratio",
"ratio_to_same_work", "floor_ratio"}, then one {"bench": "matmul", ...} line.
"""

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from mtl_jax import build  # noqa: E402
from mtl_jax.train import make_chunk  # noqa: E402


def _config(path: str, num_seeds: int, batch_scale: int = 1):
  spec = importlib.util.spec_from_file_location("bench_config", ROOT / path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  config.baseline = ""
  config.num_seeds = num_seeds
  config.batch_size = config.batch_size * batch_scale
  return config


def _flops(run, num_seeds: int) -> float:
  step = run.train_step if num_seeds == 1 else jax.vmap(run.train_step)
  cost = jax.jit(step).lower(run.state).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return float(cost.get("flops", 0.0)) if cost else 0.0


def _time(config, steps: int, repeats: int) -> dict:
  n = int(config.num_seeds)
  run = build.prepare_run(config, build.build_taskset(config))
  chunk = make_chunk(run.train_step, steps, n)
  flops = _flops(run, n)
  t0 = time.perf_counter()
  state, m = chunk(run.state)
  jax.block_until_ready(m)
  first_s = time.perf_counter() - t0
  best = float("inf")
  for _ in range(repeats):
    t0 = time.perf_counter()
    state, m = chunk(state)
    jax.block_until_ready(m)
    best = min(best, time.perf_counter() - t0)
  return {"compile_s": round(first_s - best, 3), "train_s": best, "flops_per_step": flops}


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
  """float32 GFLOP/s of one ``size``³ matmul (the best of ``repeats``)."""
  a = jnp.ones((size, size), jnp.float32)
  f = jax.jit(lambda a: a @ a)
  f(a).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    t0 = time.perf_counter()
    f(a).block_until_ready()
    best = min(best, time.perf_counter() - t0)
  return 2 * size**3 / best / 1e9


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="experiments/configs/default.py")
  parser.add_argument("--seeds", default="1,4,16")
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  peak = matmul_gflops()
  one = None
  for n in [int(s) for s in args.seeds.split(",")]:
    r = _time(_config(args.config, n), args.steps, args.repeats)
    gflops = r["flops_per_step"] * args.steps / r["train_s"] / 1e9
    one = one or ((r["train_s"], gflops) if n == 1 else None)
    same = _time(_config(args.config, 1, n), args.steps, args.repeats) if n > 1 else r
    r.update(
      bench="seeds",
      config=args.config,
      num_seeds=n,
      steps=args.steps,
      train_s=round(r["train_s"], 4),
      steps_per_s=round(args.steps / r["train_s"], 1),
      gflops=round(gflops, 1),
      ratio_to_one_seed=round(r["train_s"] / one[0], 2) if one else None,
      same_work_ratio=round(same["train_s"] / one[0], 2) if one else None,
      ratio_to_same_work=round(r["train_s"] / same["train_s"], 2),
      floor_ratio=round(n * one[1] / peak, 2) if one else None,
    )
    print(json.dumps(r), flush=True)
  print(json.dumps({"bench": "matmul", "size": 2048, "gflops": round(peak, 1)}), flush=True)


if __name__ == "__main__":
  main()
