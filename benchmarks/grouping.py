"""The cost of TAG's affinity measurement as a ratio to a plain training step, as JSON lines.

Trains the grouping experiment's task set (MMoE regression, T = 9 planted-cluster tasks,
``experiments/configs/grouping.py``) with the library's own path, once with plain steps
and once with :func:`mtl_jax.grouping.affinity_step` measuring every ``--every`` steps
(all T lookaheads as one vmap inside the compiled step), and times compiled chunks.

    python benchmarks/grouping.py                  # every = 10
    python benchmarks/grouping.py --every=1,10 --steps=200 --width=64

Prints one line per setting: {"bench": "grouping_affinity", "T", "every", "width",
"plain_step_ms", "affinity_step_ms", "ratio", "median_ratio", "cpu_ratio"} (ratio =
affinity_step_ms / plain_step_ms, each the fastest of ``--repeats`` interleaved chunks of
``--steps`` steps; ``median_ratio`` the same with medians; ``cpu_ratio`` the ratio of the
median CPU time this process spent per chunk, which other processes' load disturbs less).

``--signal`` instead measures how informative each estimator's measurements are on the
planted clusters (docs/grouping.md, section 4): per seed, the affinity of every
``--every``-th step recorded on the step's own batch (a Python loop over the jitted step),
then one line per seed and estimator: {"bench": "grouping_signal", "seed", "estimator",
"every", "steps", "measurements", "ari" (the run's average), "ari_first_half",
"contrast_snr" (per-measurement mean/sd of mean-within − mean-between-cluster affinity,
column means removed), "gap" and "gap_sem" (the objective of the planted clusters minus
that of the chosen groups, and its standard error from 10 batch means)}.
``--shared-inputs`` draws the task set with one input per example labelled for every task.

    python benchmarks/grouping.py --signal --seeds=0,1,2,3,4 --steps=800 --every=10
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _time(fn, state, steps: int) -> tuple[object, float, float]:
  """``(state, wall ms per step, this process's CPU ms per step)`` of one chunk."""
  import jax

  t0, c0 = time.perf_counter(), time.process_time()
  state, m = fn(state)
  jax.block_until_ready((state, m))
  return state, (time.perf_counter() - t0) / steps * 1e3, (time.process_time() - c0) / steps * 1e3


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
  cpu = {"plain": [], "affinity": []}
  for r in range(repeats + 1):  # interleaved, so load from other processes hits both alike
    for key in fns:
      states[key], ms, cpu_ms = _time(fns[key], states[key], steps)
      if r:  # the first chunk compiles
        times[key].append(ms)
        cpu[key].append(cpu_ms)
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
    # CPU time of this process (all its threads): less sensitive to other processes' load.
    "cpu_ratio": round(statistics.median(cpu["affinity"]) / statistics.median(cpu["plain"]), 3),
  }


def shared_input_taskset(kwargs):
  """The planted-cluster task set with one input per example labelled for every task
  (``mmoe_regression``'s construction, MMoE's multi-label form)."""
  import numpy as np

  from mtl_jax.data.synthetic import correlated_unit_vectors
  from mtl_jax.tasks import TaskSpec, make_taskset

  rng = np.random.default_rng(kwargs.get("seed", 0))
  t, dim = kwargs.num_tasks, kwargs.dim
  w = correlated_unit_vectors(t, dim, kwargs.correlation, rng, kwargs.clusters, kwargs.between)
  alpha, beta = rng.standard_normal(10), rng.standard_normal(10)

  def draw(n):
    x = rng.standard_normal((n, dim)).astype(np.float32)
    s = x @ w.T  # [n, T]
    y = s + np.sin(alpha * s[..., None] + beta).sum(-1) + 0.01 * rng.standard_normal((n, t))
    return [(x, y[:, i : i + 1].astype(np.float32)) for i in range(t)]

  specs = [TaskSpec(f"task_{i}", "mse", 1) for i in range(t)]
  train, test = draw(kwargs.n_train), draw(kwargs.get("n_test", 1000))
  return make_taskset("mmoe_regression_shared", specs, train, test, shared_inputs=True)


def record(seed: int, steps: int, every: int, shared: bool) -> dict:
  """Per-measurement ``z`` and ``cos`` ``[n, T, T]`` of one run of the grouping config."""
  import jax
  import numpy as np

  from experiments.configs import grouping as grouping_config
  from mtl_jax import build, grouping
  from mtl_jax.data.sampling import sample_batch
  from mtl_jax.gradients import Objective

  config = grouping_config.get_config()
  config.seed = config.taskset_kwargs.seed = seed
  config.num_steps = steps
  ts = shared_input_taskset(config.taskset_kwargs) if shared else build.build_taskset(config)
  run = build.prepare_run(config, ts)
  obj = Objective(run.model, run.data.kind, run.data.out_mask, ts.shared_inputs)
  opt = build.build_optimizer(config)

  @jax.jit
  def measure(state):  # the batch train_step draws at this step
    k_batch, _ = jax.random.split(jax.random.fold_in(state.rng, state.step))
    batch = sample_batch(k_batch, run.data, ts.num_tasks, config.batch_size, ts.shared_inputs)
    return grouping.lookahead_affinity(obj, opt, state.params, state.opt_state, batch)

  step, state, out = jax.jit(run.train_step), run.state, {"lookahead": [], "cosine": []}
  for s in range(steps):
    if s % every == 0:
      z, cos = measure(state)
      out["lookahead"].append(np.asarray(z))
      out["cosine"].append(np.asarray(cos))
    state, _ = step(state)
  return {k: np.stack(v).astype(np.float64) for k, v in out.items()}


def signal_stats(x, clusters: int = 3) -> dict:
  """ARI, first-half ARI, contrast SNR and planted-minus-chosen gap of ``x [n, T, T]``."""
  import numpy as np

  from mtl_jax import grouping

  n, t = x.shape[:2]
  cl = np.arange(t) % clusters
  off = ~np.eye(t, dtype=bool)
  planted = [tuple(range(c, t, clusters)) for c in range(clusters)]
  xc = x - np.stack([x[:, off[:, j], j].mean(1) for j in range(t)], 1)[:, None, :]
  contrast = xc[:, (cl[:, None] == cl) & off].mean(1) - xc[:, cl[:, None] != cl].mean(1)

  def ari(m):
    return grouping.planted_ari(grouping.serving_groups(m, grouping.select_groups(m, 3)), 3)

  chosen = grouping.select_groups(x.mean(0), clusters)
  gap = np.array(
    [grouping.grouping_score(m, planted) - grouping.grouping_score(m, chosen) for m in x]
  )
  blocks = gap[: n // 10 * 10].reshape(10, -1).mean(1)
  return {
    "measurements": int(n),
    "ari": round(ari(x.mean(0)), 3),
    "ari_first_half": round(ari(x[: n // 2].mean(0)), 3),
    "contrast_snr": round(float(contrast.mean() / contrast.std()), 3),
    "gap": float(f"{gap.mean():.3g}"),
    "gap_sem": float(f"{blocks.std(ddof=1) / np.sqrt(10):.3g}"),
  }


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--tasks", type=int, default=9)
  parser.add_argument("--every", default="10", help="comma-separated affinity_every values")
  parser.add_argument("--width", type=int, default=8, help="trunk width (the config's: 8)")
  parser.add_argument("--steps", type=int, default=100, help="steps per timed chunk")
  parser.add_argument("--repeats", type=int, default=10)
  parser.add_argument("--signal", action="store_true", help="the planted-cluster signal study")
  parser.add_argument("--seeds", default="0,1,2,3,4", help="--signal: comma-separated seeds")
  parser.add_argument("--shared-inputs", action="store_true", help="--signal: one x per example")
  args = parser.parse_args()
  for every in [int(e) for e in args.every.split(",")]:
    if not args.signal:
      line = measure(args.tasks, every, args.width, args.steps, args.repeats)
      print(json.dumps(line), flush=True)
      continue
    for seed in [int(s) for s in args.seeds.split(",")]:
      rec = record(seed, args.steps, every, args.shared_inputs)
      for est, x in rec.items():
        head = {"bench": "grouping_signal", "seed": seed, "estimator": est, "every": every}
        head |= {"steps": args.steps, "shared_inputs": args.shared_inputs}
        print(json.dumps(head | signal_stats(x)), flush=True)


if __name__ == "__main__":
  main()
