"""Step time of every gradient aggregator on a hard-sharing MLP, as JSON lines.

A 64 → 256 → 256 ReLU trunk is shared; T linear heads (one output each) are stacked on a
task axis. Each task gets its own batch of 32 examples. One jitted step computes the
per-task trunk gradients with ``jax.vmap(jax.grad)``, aggregates them, gives every head
its own task's gradient and applies adam. Standalone: it does not use ``mtl_jax.train``.

    python benchmarks/aggregators.py                       # every method, T in {2, 8, 32}
    python benchmarks/aggregators.py --methods=pcgrad,mgda --tasks=8
    python benchmarks/aggregators.py --quick               # seconds, for smoke tests

Prints one line per (method, T):
{"bench": "aggregators", "method", "T", "median_step_ms", "ratio_to_sum", "compile_s"}.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mtl_jax import aggregators  # noqa: E402


def init_params(key, t, d_in, hidden):
  """Trunk ``{'l1', 'l2'}`` and heads stacked on a leading task axis."""
  k1, k2, k3 = jax.random.split(key, 3)

  def dense(k, n_in, n_out):
    return {
      "w": jax.random.normal(k, (n_in, n_out)) * jnp.sqrt(2.0 / n_in),
      "b": jnp.zeros((n_out,)),
    }

  shared = {"l1": dense(k1, d_in, hidden), "l2": dense(k2, hidden, hidden)}
  heads = {"w": jax.random.normal(k3, (t, hidden, 1)) / jnp.sqrt(hidden), "b": jnp.zeros((t, 1))}
  return {"shared": shared, "heads": heads}


def task_loss(shared, head, x_BxD, y_B):
  h = jax.nn.relu(x_BxD @ shared["l1"]["w"] + shared["l1"]["b"])
  h = jax.nn.relu(h @ shared["l2"]["w"] + shared["l2"]["b"])
  pred_B = (h @ head["w"] + head["b"])[:, 0]
  return jnp.mean((pred_B - y_B) ** 2)


def make_step(agg, opt):
  # One backward per task, vmapped: same FLOPs as one backward of the summed loss.
  per_task_grads = jax.vmap(jax.grad(task_loss, argnums=(0, 1)), in_axes=(None, 0, 0, 0))

  def step(params, opt_state, agg_state, x_TxBxD, y_TxB):
    g_shared, g_heads = per_task_grads(params["shared"], params["heads"], x_TxBxD, y_TxB)
    d_shared, agg_state = agg.update(g_shared, agg_state, params["shared"])
    updates, opt_state = opt.update({"shared": d_shared, "heads": g_heads}, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, agg_state

  return jax.jit(step, donate_argnums=(0, 1, 2))


def bench(name, t, args):
  """Returns (median step seconds, compile seconds) for one method and T."""
  key = jax.random.PRNGKey(0)
  kp, kx, ky = jax.random.split(key, 3)
  params = init_params(kp, t, args.d_in, args.hidden)
  x = jax.random.normal(kx, (t, args.batch, args.d_in))
  y = jax.random.normal(ky, (t, args.batch))
  agg = aggregators.get(name)
  opt = optax.adam(1e-3)
  state = (params, opt.init(params), agg.init(params["shared"]))
  step = make_step(agg, opt)
  start = time.perf_counter()
  compiled = step.lower(*state, x, y).compile()
  compile_s = time.perf_counter() - start
  for _ in range(args.warmup):
    state = compiled(*state, x, y)
  jax.block_until_ready(state)
  times = []
  for _ in range(args.steps):
    start = time.perf_counter()
    state = jax.block_until_ready(compiled(*state, x, y))
    times.append(time.perf_counter() - start)
  return statistics.median(times), compile_s


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--methods", default="", help="comma list (default: all registered)")
  parser.add_argument("--tasks", default="2,8,32", help="comma list of T")
  parser.add_argument("--steps", type=int, default=20, help="timed steps")
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--batch", type=int, default=32, help="examples per task")
  parser.add_argument("--d_in", type=int, default=64)
  parser.add_argument("--hidden", type=int, default=256)
  parser.add_argument("--quick", action="store_true", help="tiny sizes, T = 2 only")
  args = parser.parse_args(argv)
  if args.quick:
    args.tasks, args.steps, args.warmup, args.hidden, args.batch = "2", 3, 1, 32, 8
  methods = args.methods.split(",") if args.methods else aggregators.names()
  for t in [int(v) for v in args.tasks.split(",")]:
    base = bench("sum", t, args)
    for name in methods:
      step_s, compile_s = base if name == "sum" else bench(name, t, args)
      print(
        json.dumps(
          {
            "bench": "aggregators",
            "method": name,
            "T": t,
            "median_step_ms": round(1e3 * step_s, 3),
            "ratio_to_sum": round(step_s / base[0], 3),
            "compile_s": round(compile_s, 3),
          }
        ),
        flush=True,
      )


if __name__ == "__main__":
  main()
