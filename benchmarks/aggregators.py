"""Step time of every gradient aggregator through the library's own train step, as JSON lines.

The model is ``hard_sharing`` (a 64 → 256 → 256 ReLU trunk shared, T linear heads stacked on
a task axis), T regression tasks with their own inputs, 32 examples per task, Adam. The
step is the one every run uses (``mtl_jax.train.make_train_step`` + ``make_chunk``: per-task
gradients of θ^sh by ``vmap(grad)``, the aggregator, each head its own gradient, optax),
timed per step over chunks of ``--chunk`` steps after a compile chunk.

    python benchmarks/aggregators.py                       # every method, T in {2, 8, 32}
    python benchmarks/aggregators.py --methods=pcgrad,mgda --tasks=8
    python benchmarks/aggregators.py --quick               # seconds, for smoke tests

Prints one line per (method, T):
{"bench": "aggregators", "method", "T", "median_step_ms", "ratio_to_sum", "ratio_to_equal",
"compile_s"}; ``equal`` is the plain step (one backward pass of the summed loss). A method
that needs one shared input batch (``mgda_ub``) gets a ``"skipped"`` line instead.

Per T it also prints {"bench": "gramian_floor", "T", "P", "median_ms", "ratio_to_equal"}:
the time of the work every Gramian-based method must do on top of the per-task gradients,
G = J Jᵀ of the [T, P] Jacobian of θ^sh plus one weighted sum of its rows, timed alone. It
costs about T²P multiply-adds against the step's ~3·T·B·P, so ``1 + ratio_to_equal`` is a
lower bound on those methods' ``ratio_to_equal`` that no solver can beat (≈ 1 + T / 3B).
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
from mtl_jax import aggregators, methods, models  # noqa: E402
from mtl_jax.aggregators._solvers import task_gramian, weighted_rows  # noqa: E402
from mtl_jax.data.sampling import DeviceData  # noqa: E402
from mtl_jax.tasks import TaskSpec, make_taskset  # noqa: E402
from mtl_jax.train import make_chunk, make_optimizer, make_train_step  # noqa: E402


def taskset(t: int, n: int, d: int, seed: int = 0):
  """T regression tasks, each on its own inputs (per-task p(x))."""
  rng = np.random.default_rng(seed)
  specs = [TaskSpec(f"task_{i}", "mse", 1) for i in range(t)]
  train, test = [], []
  for _ in range(t):
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=(d, 1)).astype(np.float32) / np.sqrt(d)
    y = (x @ w + np.sin(x @ w)).astype(np.float32)
    train.append((x[: n * 3 // 4], y[: n * 3 // 4]))
    test.append((x[n * 3 // 4 :], y[n * 3 // 4 :]))
  return make_taskset("bench", specs, train, test)


def library_step(method: str, ts, width: int, batch: int, method_kwargs=None, depth: int = 2):
  """The library's train step for ``ts``: ``hard_sharing`` (a ``depth``-layer, ``width``-wide
  MLP trunk, one head per task), K = T, Adam 1e-3; the step shares the batch when ``ts`` has
  ``shared_inputs``.

  Returns:
    ``(state, step)``: the initial :class:`~mtl_jax.train.TrainState` and ``step(state)``.
  """
  t = ts.num_tasks
  model = models.get(
    "hard_sharing", num_tasks=t, output_size=ts.output_size, width=width, depth=depth
  )
  init, step = make_train_step(
    model,
    DeviceData.from_taskset(ts),
    make_optimizer("adam", 1e-3),
    method,
    method_kwargs,
    tasks_per_batch=t,
    batch_size=batch,
    shared_inputs=ts.shared_inputs,
  )
  params = model.init(jax.random.PRNGKey(0), jnp.asarray(ts.x_train[0, :2]))
  return init(jax.random.PRNGKey(1), params), step


def runner(method: str, t: int, args, method_kwargs: dict | None = None, ts=None):
  """One method's chunk of ``args.chunk`` steps, compiled and run once.

  ``ts`` (default: :func:`taskset`, T one-output tasks with ``args.d_in`` inputs) may be
  any task set of T tasks, e.g. one with ``shared_inputs`` (then the step shares the batch).

  Returns:
    ``(timed, compile_s)``: ``timed()`` runs one more chunk and returns seconds per step.
  """
  ts = taskset(t, args.examples, args.d_in) if ts is None else ts
  state, step = library_step(method, ts, args.hidden, args.batch, method_kwargs)
  holder = [state]
  chunk = make_chunk(step, args.chunk)

  def timed():
    start = time.perf_counter()
    holder[0], m = chunk(holder[0])  # the state is donated: keep only the new one
    jax.block_until_ready(m)
    return (time.perf_counter() - start) / args.chunk

  compile_s = timed() * args.chunk
  return timed, compile_s


def bench(
  method: str, t: int, args, method_kwargs: dict | None = None, ts=None
) -> tuple[float, float]:
  """(median seconds per step, compile seconds) of one method at T tasks (see :func:`runner`)."""
  timed, compile_s = runner(method, t, args, method_kwargs, ts)
  return statistics.median(timed() for _ in range(args.repeats)), compile_s


def gramian_floor(t: int, args) -> tuple[int, float]:
  """(P, median seconds) of ``weighted_rows(w, J)`` after ``task_gramian(J)`` for J [T, P]."""
  model = models.get("hard_sharing", num_tasks=t, output_size=1, width=args.hidden, depth=2)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((2, args.d_in)))
  p = sum(leaf.size for leaf in jax.tree.leaves(params["shared"]))
  jac = jax.random.normal(jax.random.PRNGKey(0), (t, p))

  @jax.jit
  def work(jac):
    gram = task_gramian(jac)
    return weighted_rows(jnp.sum(gram, 0) / jnp.trace(gram), jac)

  jax.block_until_ready(work(jac))
  times = []
  for _ in range(args.repeats):
    start = time.perf_counter()
    for _ in range(args.chunk):
      out = work(jac)
    jax.block_until_ready(out)
    times.append((time.perf_counter() - start) / args.chunk)
  return p, statistics.median(times)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--methods", default="", help="comma list (default: all registered)")
  parser.add_argument("--tasks", default="2,8,32", help="comma list of T")
  parser.add_argument("--chunk", type=int, default=10, help="steps per timed chunk")
  parser.add_argument("--repeats", type=int, default=5, help="timed chunks (median taken)")
  parser.add_argument("--batch", type=int, default=32, help="examples per task")
  parser.add_argument("--examples", type=int, default=256, help="examples per task (data)")
  parser.add_argument("--d_in", type=int, default=64)
  parser.add_argument("--hidden", type=int, default=256)
  parser.add_argument("--quick", action="store_true", help="tiny sizes, T = 2 only")
  args = parser.parse_args(argv)
  if args.quick:
    args.tasks, args.chunk, args.repeats, args.hidden, args.batch = "2", 2, 1, 32, 8
  names = args.methods.split(",") if args.methods else aggregators.names()
  for t in [int(v) for v in args.tasks.split(",")]:
    plain = bench("equal", t, args)
    base = bench("sum", t, args)
    p, floor_s = gramian_floor(t, args)
    floor = {"bench": "gramian_floor", "T": t, "P": p, "median_ms": round(1e3 * floor_s, 3)}
    print(json.dumps(dict(floor, ratio_to_equal=round(floor_s / plain[0], 3))), flush=True)
    for name in names:
      try:  # e.g. mgda_ub needs one shared input batch: it has no per-task-input step
        methods.check_inputs(methods.get(name, num_tasks=t), shared_inputs=False)
      except ValueError as e:
        print(json.dumps({"bench": "aggregators", "method": name, "T": t, "skipped": str(e)}))
        continue
      step_s, compile_s = base if name == "sum" else bench(name, t, args)
      row = {
        "bench": "aggregators",
        "method": name,
        "T": t,
        "median_step_ms": round(1e3 * step_s, 3),
        "ratio_to_sum": round(step_s / base[0], 3),
        "ratio_to_equal": round(step_s / plain[0], 3),
        "compile_s": round(compile_s, 3),
      }
      print(json.dumps(row), flush=True)


if __name__ == "__main__":
  main()
