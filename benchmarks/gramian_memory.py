"""Peak memory of an aggregator step at scale: the Jacobian path vs the Gramian path, as JSON.

A wide ``hard_sharing`` trunk (default 64 → 2048 → 2048 → 2048, about 8.5M shared
parameters), T = 32 regression tasks (each its own inputs, or with ``--shared_inputs`` one
input batch for all), per-task batch 32, Adam, through the library's own step
(``train.make_train_step`` + ``make_chunk``). For each method the step is compiled three
ways: the plain step (``equal``: one backward pass of the summed loss), the aggregator on
the per-task Jacobian (``gramian="never"``: ``vmap(grad)`` holds ``[T, |θ^sh|]``) and on
the Gramian path (``gramian="always"``: G = JJᵀ one task at a time, one weighted backward;
``mtl_jax.gramian``).

Memory is XLA's compiled memory analysis of the one-step chunk (deterministic, the same
numbers on any CPU): peak = arguments + outputs − donated aliases + temporaries.

    python benchmarks/gramian_memory.py                         # upgrad, mgda, T = 32, 8.5M
    python benchmarks/gramian_memory.py --methods=upgrad --steps=1   # also time one step
    python benchmarks/gramian_memory.py --quick                 # seconds, for smoke tests

Prints one line per (method, path): {"bench": "gramian_memory", "method", "path", "T",
"params_shared", "peak_mb", "temp_mb", "ratio_to_plain", "jacobian_mb", "compile_s"} (and
"step_s" with ``--steps``).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from aggregators import library_step  # noqa: E402
from aggregators import taskset as per_task_taskset  # noqa: E402
from rep_grad import shared_input_taskset  # noqa: E402

from mtl_jax.train import make_chunk  # noqa: E402

MB = 2.0**20


def memory(method: str, kwargs: dict | None, args) -> dict:
  """Compiled memory (and optionally the time of ``--steps`` steps) of one step."""
  t = args.tasks
  if args.shared_inputs:
    ts = shared_input_taskset(t, args.examples, args.d_in)
  else:
    ts = per_task_taskset(t, args.examples, args.d_in)
  state, step = library_step(method, ts, args.width, args.batch, kwargs, depth=args.depth)
  start = time.perf_counter()
  compiled = make_chunk(step, 1).lower(state).compile()
  compile_s = time.perf_counter() - start
  m = compiled.memory_analysis()
  peak = (
    m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes + m.temp_size_in_bytes
  )
  shared = sum(x.size for x in jax.tree.leaves(state.params["shared"]))
  out = {
    "params_shared": int(shared),
    "peak_mb": round(peak / MB, 3),
    "temp_mb": round(m.temp_size_in_bytes / MB, 3),
    "jacobian_mb": round(t * shared * 4 / MB, 1),
    "compile_s": round(compile_s, 2),
  }
  if args.steps:
    state, metrics = compiled(state)  # warm-up
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for _ in range(args.steps):
      state, metrics = compiled(state)
    jax.block_until_ready(metrics)
    out["step_s"] = round((time.perf_counter() - start) / args.steps, 3)
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--methods", default="upgrad,mgda")
  parser.add_argument("--tasks", type=int, default=32)
  parser.add_argument("--width", type=int, default=2048)
  parser.add_argument("--depth", type=int, default=3)
  parser.add_argument("--d_in", type=int, default=64)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--examples", type=int, default=128)
  parser.add_argument("--shared_inputs", action="store_true", help="one input batch for all")
  parser.add_argument("--steps", type=int, default=0, help="also time this many steps")
  parser.add_argument("--quick", action="store_true", help="tiny sizes, for smoke tests")
  args = parser.parse_args(argv)
  if args.quick:
    args.tasks, args.width, args.depth, args.examples = 3, 32, 2, 32
  plain = memory("equal", None, args)
  rows = [("equal", "plain", plain)]
  for name in args.methods.split(","):
    rows.append((name, "jacobian", memory(name, {"gramian": "never"}, args)))
    rows.append((name, "gramian", memory(name, {"gramian": "always"}, args)))
  for name, path, r in rows:
    row = {"bench": "gramian_memory", "method": name, "path": path, "T": args.tasks}
    row["shared_inputs"] = args.shared_inputs
    row.update(r, ratio_to_plain=round(r["peak_mb"] / plain["peak_mb"], 3))
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
  main()
