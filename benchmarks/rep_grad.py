"""Cost of aggregating w.r.t. the shared representation (``rep_grad=True``) vs w.r.t. θ^sh.

T regression tasks share one input batch (multi-output regression on the same x, the
setting ``rep_grad`` needs); a hard-sharing MLP (``--width`` wide, 2 shared layers) is
trained through the library's own step (``train.make_train_step`` + ``make_chunk``,
Adam). For each method and T: the step time on the θ^sh path and on the Z path.

    python benchmarks/rep_grad.py                          # sum, pcgrad, mgda, upgrad; T 8, 32
    python benchmarks/rep_grad.py --methods=cagrad --tasks=8 --quick

Prints one line per (method, T, rep_grad): {"bench": "rep_grad", "method", "T", "rep_grad",
"median_step_ms", "ratio_to_theta_path", "params_shared", "rep_size"}.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mtl_jax import models  # noqa: E402
from mtl_jax.data.sampling import DeviceData  # noqa: E402
from mtl_jax.tasks import TaskSpec, make_taskset  # noqa: E402
from mtl_jax.train import make_chunk, make_optimizer, make_train_step  # noqa: E402


def shared_input_taskset(t: int, n: int, d: int, seed: int = 0):
  """T linear-plus-sine regression tasks of the same inputs x (shared_inputs=True)."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, d)).astype(np.float32)
  w = rng.normal(size=(d, t)).astype(np.float32) / np.sqrt(d)
  y = (x @ w + np.sin(x @ w)).astype(np.float32)
  specs = [TaskSpec(f"task_{i}", "mse", 1) for i in range(t)]
  split = n * 3 // 4
  train = [(x[:split], y[:split, i : i + 1]) for i in range(t)]
  test = [(x[split:], y[split:, i : i + 1]) for i in range(t)]
  return make_taskset("bench_shared", specs, train, test, shared_inputs=True)


def bench(method: str, t: int, rep_grad: bool, args) -> dict:
  ts = shared_input_taskset(t, args.examples, args.d_in)
  model = models.get("hard_sharing", num_tasks=t, output_size=1, width=args.width)
  init, step = make_train_step(
    model,
    DeviceData.from_taskset(ts),
    make_optimizer("adam", 1e-3),
    method,
    {"rep_grad": rep_grad},
    tasks_per_batch=t,
    batch_size=args.batch,
    shared_inputs=True,
  )
  params = model.init(jax.random.PRNGKey(0), jnp.asarray(ts.x_train[0, :2]))
  state = init(jax.random.PRNGKey(1), params)
  chunk = make_chunk(step, args.chunk)
  state, m = chunk(state)  # compile + warm-up
  jax.block_until_ready(m)
  times = []
  for _ in range(args.repeats):
    start = time.perf_counter()
    state, m = chunk(state)
    jax.block_until_ready(m)
    times.append((time.perf_counter() - start) / args.chunk)
  shared = sum(x.size for x in jax.tree.leaves(state.params["shared"]))
  return {"median_step_ms": 1e3 * statistics.median(times), "params_shared": int(shared)}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--methods", default="sum,pcgrad,mgda,upgrad")
  parser.add_argument("--tasks", default="8,32")
  parser.add_argument("--width", type=int, default=256)
  parser.add_argument("--d_in", type=int, default=64)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--examples", type=int, default=512)
  parser.add_argument("--chunk", type=int, default=20, help="steps per timed chunk")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--quick", action="store_true", help="tiny sizes, for smoke tests")
  args = parser.parse_args(argv)
  if args.quick:
    args.tasks, args.width, args.chunk, args.repeats, args.examples = "2", 16, 2, 1, 64
  for t in [int(v) for v in args.tasks.split(",")]:
    for method in args.methods.split(","):
      base = None
      for rep_grad in (False, True):
        r = bench(method, t, rep_grad, args)
        base = base or r["median_step_ms"]
        row = {"bench": "rep_grad", "method": method, "T": t, "rep_grad": rep_grad}
        row.update(r, median_step_ms=round(r["median_step_ms"], 3))
        row["ratio_to_theta_path"] = round(r["median_step_ms"] / base, 3)
        row["rep_size"] = args.batch * args.width
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
  main()
