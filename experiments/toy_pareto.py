r"""The two-objective toy of CAGrad, Nash-MTL and FAMO: every method from five starts.

  python -m experiments.toy_pareto --workdir=workdirs/toy_pareto
  python -m experiments.toy_pareto --variant=nash --workdir=workdirs/toy_pareto_nash
  python -m experiments.toy_pareto --methods=sum,mgda,cagrad --num_steps=20000 --workdir=/tmp/tp
  python -m experiments.toy_pareto --smoke --workdir=/tmp/tp_smoke

The problem (Liu et al., "Conflict-Averse Gradient Descent", NeurIPS 2021, toy script;
reused by Nash-MTL and FAMO): x ∈ R² is the shared parameter and the two objectives are
the tasks. For x2 > 0 each objective is a log-valley, for x2 < 0 a quadratic bowl, blended
by u = max(tanh(x2/2), 0) and d = max(tanh(−x2/2), 0):

  f_i(x) = s_i·[u·(log max(v_i, 5e−6) + 6) + d·(q_i − 20)],
  v1 = |−(x1 + 7)/2 − tanh(−x2)|,   q1 = ((x1 − 7)² + (x2 + 8)²/10)/10,
  v2 = |(3 − x1)/2 + tanh(−x2) + 2|, q2 = ((x1 + 7)² + (x2 + 8)²/10)/10,

with s2 = 1 and s1 = 1 (``--variant=cagrad``) or 0.1 (``--variant=nash``: Nash-MTL's and
FAMO's version, which makes f1 ten times smaller). Starts: the five of Nash-MTL and FAMO.
Adam (lr 1e-3) on x; ``--num_steps`` steps (the papers: CAGrad 100k, Nash-MTL 35k,
FAMO 50k).

Pareto set (independent of s1): for x2 < 0 only the bowls are active, f_i = s_i·(q_i − 20)·d.
∇f1 and ∇f2 are anti-parallel exactly when det[∇f1; ∇f2] = 0, which reduces to one
equation in x2 for each x1 ∈ [−7, 7]:

  0.02·d·(x2 + 8) + ½(1 − d²)·((x1² − 49)/10 − (x2 + 8)²/100 + 20) = 0,

with one root in x2 ∈ (−12, −8) (found by bisection, float64). The curve runs from the
minimiser of f2 (x1 = −7, x2 ≈ −8.434) through (0, −8.3551) (the papers' straight line
x2 = −8.3552 is its middle) to the minimiser of f1 (x1 = 7); the x1-components of the two
gradients have opposite signs there, and no point of a dense grid dominates a point of it
(``tests/test_toy_pareto.py``). An end point's distance to the set is its Euclidean
distance to that curve (a polyline of 2001 points) in x; it has reached the set when the
distance is at most ``--tolerance``.

Methods: every registered aggregator and loss weighting (``mtl_jax.aggregators.names()``
and ``mtl_jax.weighting.names()`` at run time), or ``--methods``. Aggregators get the 2×2
Jacobian (row i = ∇_x f_i) as per-task gradients; weightings get the loss vector and step
along Σ_i sg(w_i)·∇_x f_i. Losses handed to methods are L_i = f_i + 21·s_i (FAMO's authors'
lower bound −21 for each objective, so that loss-based weights such as log L or 1/L are
defined; gradients are those of f). Extras a method declares get their toy meaning
(:data:`TOY_EXTRAS`); an extra unknown to the toy is an error. :data:`TOY_SETTINGS` holds
the per-method hyperparameters of the papers' toy runs and :data:`SKIPPED` the methods
without a meaningful two-objective form, each with its reason.

All five starts of one method are one jitted ``lax.scan`` vmapped over starts (one compile
per method). Writes ``results.json`` (per method: end points, end losses f, distance to
the Pareto set, reached, the x1 of the nearest point of the set), ``trajectories.png``
(one panel per method: contours of f1 + f2, the Pareto set, the five paths) and
``table.md``.
"""

import inspect
import json
import math
import os
import time
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags, logging

from experiments import cli
from mtl_jax import aggregators, methods, weighting

VARIANTS = {"cagrad": (1.0, 1.0), "nash": (0.1, 1.0)}  # scales (s1, s2) of (f1, f2)
STARTS = ((-8.5, 7.5), (0.0, 0.0), (9.0, 9.0), (-7.5, -0.5), (9.0, -1.0))
LOG_FLOOR = 5e-6  # the log-valley's clamp (the authors' LOWER)
LOSS_FLOOR = -21.0  # lower bound of each unscaled objective (FAMO's toy: min_losses)
PARETO_X1 = 7.0  # the set spans x1 ∈ [−7, 7]
DEFAULT_STEPS = 100_000  # CAGrad's toy (Nash-MTL: 35k, FAMO: 50k); CAGrad needs ~73k here
DEFAULT_TOLERANCE = 0.05
LEARNING_RATE = 1e-3
PAPER_STEPS = {"cagrad": 100_000, "nash_mtl": 35_000, "famo": 50_000}  # each paper's toy run
MAX_RECORDS = 500  # trajectory points kept per start

# Hyperparameters of the papers' toy runs (others: the library's defaults).
TOY_SETTINGS: dict[str, tuple[dict, str]] = {
  "cagrad": ({"c": 0.5, "rescale": 2}, "CAGrad's toy: c = 0.5, the update divided by 1 + c"),
  "famo": ({"gamma": 0.0}, "FAMO's toy run: no weight decay on the logits (gamma = 0)"),
  "nash_mtl": ({"max_norm": 1.0}, "Nash-MTL's toy: update clipped to norm 1"),
  "static": ({"weights": (1.0, 1.0)}, "needs weights: equal weights (1, 1)"),
}
# Methods run but not meaningful with two objectives (noted in the table).
NOTES: dict[str, str] = {
  "trimmed_mean": "T = 2 clamps the trim to 0: the mean",
}
# Methods without a meaningful two-objective form (not run).
SKIPPED: dict[str, str] = {
  "krum": "with T = 2 every Krum score is 0 and the first row is taken: f1's gradient alone",
}

flags.DEFINE_string("workdir", "workdirs/toy_pareto", "Where results go.")
flags.DEFINE_enum("variant", "cagrad", list(VARIANTS), "cagrad: f1 as is; nash: f1 scaled by 0.1.")
flags.DEFINE_integer("num_steps", DEFAULT_STEPS, "Adam steps from every start.")
flags.DEFINE_list("methods", [], "Methods to run (default: every registered one).")
flags.DEFINE_float("tolerance", DEFAULT_TOLERANCE, "Distance (in x) that counts as reached.")
flags.DEFINE_integer("seed", 0, "Seed of the rng extra (random weights, PCGrad's order, ...).")
flags.DEFINE_bool("smoke", False, "Tiny run: 200 steps, four methods.")
FLAGS = flags.FLAGS

SMOKE_METHODS = ("sum", "cagrad", "famo", "rlw")
SMOKE_STEPS = 200


# --- the problem -------------------------------------------------------------------------


def _relu_like(v):
  # max(v, 0) whose derivative at 0 is 1, as torch.clamp(v, 0) (the start (0, 0) sits there).
  return jnp.where(v >= 0, v, 0.0)


def objectives(x, scale: Sequence[float] = VARIANTS["cagrad"]) -> jax.Array:
  """``[..., 2]`` values (f1, f2) at points ``x [..., 2]`` (see the module docstring)."""
  x1, x2 = x[..., 0], x[..., 1]
  up, down = _relu_like(jnp.tanh(0.5 * x2)), _relu_like(jnp.tanh(-0.5 * x2))
  valley1 = jnp.abs(-0.5 * (x1 + 7.0) - jnp.tanh(-x2))
  valley2 = jnp.abs(0.5 * (3.0 - x1) + jnp.tanh(-x2) + 2.0)
  log1 = jnp.log(jnp.where(valley1 >= LOG_FLOOR, valley1, LOG_FLOOR)) + 6.0
  log2 = jnp.log(jnp.where(valley2 >= LOG_FLOOR, valley2, LOG_FLOOR)) + 6.0
  bowl = 0.1 * (x2 + 8.0) ** 2
  sq1 = ((x1 - 7.0) ** 2 + bowl) / 10.0 - 20.0
  sq2 = ((x1 + 7.0) ** 2 + bowl) / 10.0 - 20.0
  f1 = up * log1 + down * sq1
  f2 = up * log2 + down * sq2
  return jnp.stack([scale[0] * f1, scale[1] * f2], axis=-1)


def _pareto_equation(x1, x2):
  d = np.tanh(-0.5 * x2)
  rest = (x1**2 - 49.0) / 10.0 - (x2 + 8.0) ** 2 / 100.0 + 20.0
  return 0.02 * d * (x2 + 8.0) + 0.5 * (1.0 - d * d) * rest


def pareto_set(num: int = 2001) -> np.ndarray:
  """``[num, 2]`` points of the Pareto set (float64), x1 from −7 to 7 (any scale s1 > 0)."""
  x1 = np.linspace(-PARETO_X1, PARETO_X1, num)
  lo, hi = np.full(num, -12.0), np.full(num, -8.0)  # equation < 0 at lo, > 0 at hi
  for _ in range(60):
    mid = 0.5 * (lo + hi)
    pos = _pareto_equation(x1, mid) > 0
    hi, lo = np.where(pos, mid, hi), np.where(pos, lo, mid)
  return np.stack([x1, 0.5 * (lo + hi)], axis=1)


def distance_to_set(points, curve: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Euclidean distance of ``points [..., 2]`` to the polyline ``curve`` (default: the
  Pareto set) and the x1 of the nearest point on it."""
  curve = pareto_set() if curve is None else curve
  p = np.asarray(points, np.float64)[..., None, :]
  a, b = curve[:-1], curve[1:]
  ab = b - a
  t = np.clip(np.sum((p - a) * ab, -1) / np.sum(ab * ab, -1), 0.0, 1.0)
  near = a + t[..., None] * ab
  dist = np.linalg.norm(p - near, axis=-1)
  i = np.argmin(dist, axis=-1)
  nearest = np.take_along_axis(near, i[..., None, None], axis=-2)[..., 0, :]
  return np.min(dist, axis=-1), nearest[..., 0]


# --- methods -----------------------------------------------------------------------------


class ToyInputs(NamedTuple):
  """What one step knows, from which the extras are made."""

  x: jax.Array  # [2] the point
  f: jax.Array  # [2] (f1, f2) at x
  jac: jax.Array  # [2, 2] row i = ∇_x f_i
  lower: jax.Array  # [2] the losses' floor: L = f − lower
  rng: jax.Array  # this step's key
  step: jax.Array  # int32 step


# Extra name -> its toy meaning (x is the shared parameter vector and the representation).
TOY_EXTRAS = {
  "losses": lambda s: s.f - s.lower,  # L_i = f_i + 21·s_i > 0
  "task_ids": lambda s: jnp.arange(2),
  "rng": lambda s: s.rng,
  "step": lambda s: s.step,
  "grad_norms": lambda s: jnp.linalg.norm(s.jac, axis=1),  # ‖∇_x f_i‖
  "rep_grads": lambda s: s.jac,  # x is the representation: ∂f_i/∂x
  "shared_grads": lambda s: s.jac,  # [2, P] per-task gradients of the shared parameters
}


def method_names(selected: Sequence[str] = ()) -> list[str]:
  """``selected`` (checked) or every registered method not in :data:`SKIPPED`."""
  every = methods.names()
  if not selected:
    return [n for n in every if n not in SKIPPED]
  unknown = [n for n in selected if n not in every]
  if unknown:
    raise ValueError(f"--methods: unknown {unknown}; registered: {', '.join(every)}")
  skipped = [f"{n} ({SKIPPED[n]})" for n in selected if n in SKIPPED]
  if skipped:
    raise ValueError(f"--methods: not meaningful on the toy: {'; '.join(skipped)}")
  return list(selected)


def kind_of(name: str) -> str:
  """``"aggregator"`` or ``"weighting"``; a name registered as both (``imtl``) is the
  aggregator, as in :func:`mtl_jax.methods.get`."""
  return "aggregator" if name in aggregators.names() else "weighting"


def build(name: str):
  """``(kind, obj, extras)``: the built weighting or aggregator and the extras it declares.

  Raises:
    ValueError: the method declares an extra the toy has no meaning for.
  """
  hyper = dict(TOY_SETTINGS.get(name, ({}, ""))[0])
  if kind_of(name) == "weighting":
    kind, obj = "weighting", weighting.get(name, **hyper)
    declared = set(obj.requires)
  else:
    params = inspect.signature(methods.factory(name)).parameters
    for k in ("num_tasks", "max_tasks"):
      if k in params and hyper.get(k) is None:
        hyper[k] = 2
    kind, obj = "aggregator", aggregators.get(name, **hyper)
    declared = set(methods.declared_extras(obj.update))
  unknown = sorted(declared - set(TOY_EXTRAS))
  if unknown:
    raise ValueError(
      f"method {name!r} needs the extra(s) {unknown}, which the toy cannot provide yet: give "
      "them a toy meaning in experiments/toy_pareto.py TOY_EXTRAS or list the method in SKIPPED"
    )
  return kind, obj, sorted(declared)


def direction_fn(name: str, scale):
  """``(init(x) -> state, direction(x, state, rng, step) -> (d, f, state))`` for one start."""
  kind, obj, declared = build(name)
  lower = jnp.asarray([LOSS_FLOOR * s for s in scale], jnp.float32)
  value_and_jac = lambda x: (objectives(x, scale), jax.jacrev(lambda y: objectives(y, scale))(x))

  def init(x):
    return obj.init(2) if kind == "weighting" else obj.init(x)

  def direction(x, state, rng, step):
    f, jac = value_and_jac(x)
    inputs = ToyInputs(x, f, jac, lower, rng, step)
    extras = {k: TOY_EXTRAS[k](inputs) for k in declared}
    if kind == "weighting":
      extras.pop("task_ids", None)
      w, state = obj.update(f - lower, state, task_ids=jnp.arange(2), **extras)
      d = jax.lax.stop_gradient(w) @ jac  # ∇_x Σ_i sg(w_i)·f_i
    else:
      d, state = obj.update(jac, state, x, **extras)
    return d, f, state

  return init, direction


def run_method(name: str, scale, num_steps: int, seed: int = 0, starts=STARTS) -> dict:
  """Runs ``name`` from every start (one jitted scan, vmapped over starts).

  Returns:
    ``{"trajectory": [S, R, 2], "steps": [R], "end": [S, 2], "end_f": [S, 2]}`` (numpy,
    R recorded points from the start to the end point).
  """
  init, direction = direction_fn(name, scale)
  opt = optax.adam(LEARNING_RATE)
  every = max(1, math.ceil(num_steps / MAX_RECORDS))
  chunks = math.ceil(num_steps / every)

  def one_start(x0, key):
    def step(carry, _):
      x, opt_state, state, i = carry
      d, _, new_state = direction(x, state, jax.random.fold_in(key, i), i)
      upd, new_opt = opt.update(d, opt_state, x)
      new = (optax.apply_updates(x, upd), new_opt, new_state, i + 1)
      active = i < num_steps  # the last chunk may run past num_steps: keep the end point
      return jax.tree.map(lambda n, o: jnp.where(active, n, o), new, carry), None

    def chunk(carry, _):
      carry, _ = jax.lax.scan(step, carry, None, length=every)
      return carry, carry[0]

    carry = (x0, opt.init(x0), init(x0), jnp.zeros((), jnp.int32))
    carry, xs = jax.lax.scan(chunk, carry, None, length=chunks)
    return jnp.concatenate([x0[None], xs]), carry[0]

  x0 = jnp.asarray(starts, jnp.float32)
  keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(seed), i))(jnp.arange(len(x0)))
  traj, end = jax.jit(jax.vmap(one_start))(x0, keys)
  end_f = objectives(end, scale)
  steps = np.minimum(np.arange(chunks + 1) * every, num_steps)
  return {
    "trajectory": np.asarray(traj),
    "steps": steps,
    "end": np.asarray(end),
    "end_f": np.asarray(end_f),
  }


def summarize(name: str, run: dict, tolerance: float, seconds: float) -> dict:
  """The results.json entry of one method."""
  dist, x1 = distance_to_set(run["end"])
  kind = kind_of(name)
  reached = dist <= tolerance
  hyper, why = TOY_SETTINGS.get(name, ({}, ""))
  path_dist, _ = distance_to_set(run["trajectory"])  # [S, R]
  inside = path_dist <= tolerance
  # The first recorded step from which the path stays within the tolerance (None: never).
  last_out = inside.shape[1] - np.argmax(~inside[:, ::-1], axis=1)
  first = np.where(inside.all(1), 0, run["steps"][np.minimum(last_out, inside.shape[1] - 1)])
  steps_to_reach = [int(f) if ok else None for f, ok in zip(first, inside[:, -1])]
  return {
    "kind": kind,
    "hyperparams": {k: list(v) if isinstance(v, tuple) else v for k, v in hyper.items()},
    "note": why or NOTES.get(name, ""),
    "end_points": run["end"].tolist(),
    "end_losses": run["end_f"].tolist(),
    "distance": dist.tolist(),
    "reached": reached.tolist(),
    "num_reached": int(reached.sum()),
    "nearest_x1": x1.tolist(),
    "steps_to_reach": steps_to_reach,
    "finite": bool(np.all(np.isfinite(run["end"]))),
    "seconds": seconds,
  }


# --- outputs -----------------------------------------------------------------------------


def markdown_table(results: dict) -> str:
  """Method → starts that reached the set, where on it they ended, how fast, worst distance."""
  lines = [
    "| method | kind | reached | x1 at the end, per start (× not reached) | steps to reach "
    "(max) | max distance | note |",
    "|---|---|---:|---|---:|---:|---|",
  ]
  for name, r in results["methods"].items():
    x1 = [f"{v:+.2f}" if ok else "×" for v, ok in zip(r["nearest_x1"], r["reached"])]
    steps = [s for s in r["steps_to_reach"] if s is not None]
    lines.append(
      f"| {name} | {r['kind']} | {r['num_reached']}/{len(r['reached'])} | {', '.join(x1)} | "
      f"{max(steps) if steps else '–'} | {max(r['distance']):.2g} | {r['note']} |"
    )
  lines += [f"| {n} | – | not run | | | | {why} |" for n, why in results["skipped"].items()]
  return "\n".join(lines)


def plot_trajectories(runs: dict[str, dict], scale, path: str, cols: int = 6) -> None:
  """One panel per method: contours of f1 + f2, the Pareto set, the paths of every start."""
  from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

  n = max(1, len(runs))
  cols = min(cols, n)
  rows = -(-n // cols)
  fig = Figure(figsize=(2.6 * cols, 2.6 * rows))
  axes = fig.subplots(rows, cols, squeeze=False)
  g = np.linspace(-10.0, 10.0, 201)
  gx, gy = np.meshgrid(g, g)
  total = np.asarray(objectives(jnp.stack([gx, gy], -1), scale)).sum(-1)
  curve = pareto_set(201)
  for ax in axes.flat[n:]:
    ax.set_visible(False)
  for ax, (name, run) in zip(axes.flat, runs.items()):
    ax.contour(gx, gy, total, levels=15, cmap="viridis", linewidths=0.6)
    ax.plot(curve[:, 0], curve[:, 1], color="0.5", linewidth=4, alpha=0.6, zorder=1)
    for s, path_s in enumerate(run["trajectory"]):
      ax.plot(path_s[:, 0], path_s[:, 1], color=f"C{s}", linewidth=1.0, zorder=3)
      ax.plot(*path_s[0], "o", color="k", markersize=3, zorder=4)
      ax.plot(*path_s[-1], "*", color=f"C{s}", markersize=7, markeredgecolor="k", zorder=5)
    ax.set_title(name, fontsize=9)
    ax.set_xlim(-10, 10)
    ax.set_ylim(-10, 10)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=6)
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def run_all(
  names: Sequence[str],
  variant: str,
  num_steps: int,
  tolerance: float,
  workdir: str,
  seed: int = 0,
  verbose: bool = True,
) -> dict:
  """Runs every method, writes results.json, table.md and trajectories.png; returns the
  results (with the runs' trajectories under ``"runs"``, not written)."""
  scale = VARIANTS[variant]
  os.makedirs(workdir, exist_ok=True)
  for name in names:  # extras the toy cannot give are an error before anything runs
    build(name)
  complete = set(names) | set(SKIPPED) >= set(methods.names())
  runs, out = {}, {}
  t_all = time.time()
  for name in names:
    t0 = time.time()
    runs[name] = run_method(name, scale, num_steps, seed)
    out[name] = summarize(name, runs[name], tolerance, time.time() - t0)
    if verbose:
      r = out[name]
      print(
        f"{name:>16}: reached {r['num_reached']}/{len(STARTS)}, max distance "
        f"{max(r['distance']):.3g}, {r['seconds']:.1f} s",
        flush=True,
      )
  results = {
    "variant": variant,
    "scale": list(scale),
    "num_steps": num_steps,
    "learning_rate": LEARNING_RATE,
    "tolerance": tolerance,
    "seed": seed,
    "starts": [list(s) for s in STARTS],
    "pareto_set": {
      "description": "x1 in [-7, 7]; x2 the root in (-12, -8) of the anti-parallel-gradient "
      "equation (module docstring)",
      "x2_middle": float(pareto_set(3)[1, 1]),
      "x2_ends": float(pareto_set(3)[0, 1]),
    },
    "methods": out,
    # Listed when the run covers the whole menu (not for a --methods selection).
    "skipped": {n: why for n, why in SKIPPED.items() if complete and n in methods.names()},
    "wall_s": time.time() - t_all,
  }
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=1)
  table = markdown_table(results)
  with open(os.path.join(workdir, "table.md"), "w") as f:
    f.write(
      f"# Two-objective toy, variant {variant} (s1 = {scale[0]}), {num_steps} Adam steps\n\n"
      f"Reached: end point within {tolerance} (in x) of the Pareto set.\n\n{table}\n"
    )
  plot_trajectories(runs, scale, os.path.join(workdir, "trajectories.png"))
  return dict(results, runs=runs)


def main(argv):
  del argv
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  steps, selected = FLAGS.num_steps, FLAGS.methods
  if FLAGS.smoke:
    steps = steps if FLAGS["num_steps"].present else SMOKE_STEPS
    selected = selected or list(SMOKE_METHODS)
  try:
    if steps < 1:
      raise ValueError(f"--num_steps must be >= 1, got {steps}")
    if not FLAGS.tolerance > 0:
      raise ValueError(f"--tolerance must be > 0, got {FLAGS.tolerance}")
    names = method_names(selected)
    results = run_all(names, FLAGS.variant, steps, FLAGS.tolerance, FLAGS.workdir, FLAGS.seed)
  except (OSError, ValueError) as e:
    cli.fail(e)
  print(markdown_table(results))
  print(f"results: {os.path.abspath(os.path.join(FLAGS.workdir, 'results.json'))}")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
