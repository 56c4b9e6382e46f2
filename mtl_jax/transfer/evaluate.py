"""The three measurements of a transfer study: adaptation curve, practices, cross-validation.

Every number is the target task's primary test metric (``accuracy``, or ``mse`` in label
units for regression) per seed, with the mean and a 95% Student-t interval over seeds
(:func:`mtl_jax.summary.ci95`; a single seed gives ``[mean, mean]``). Practices are paired
by seed with the reference (same n-subset, same fresh head, same source seed, same batches).
"""

import itertools
import sys

import numpy as np

from mtl_jax.summary import ci95
from mtl_jax.tasks import HIGHER_IS_BETTER, TaskSet
from mtl_jax.transfer import optim, splits
from mtl_jax.transfer.arms import Arm, Context, Spec, run_specs


def describe(values) -> dict:
  """``{"mean", "ci95", "per_seed"}`` (``ci95 = [mean, mean]`` for one value)."""
  v = [float(x) for x in values]
  mean = float(np.mean(v))
  return {"mean": mean, "ci95": ci95(v) or [mean, mean], "per_seed": v}


def _target_rows(ctx: Context):
  y = np.asarray(ctx.target.y_train)
  return y, ctx.target_ts.specs[0].loss


def n_values(config, target: TaskSet) -> tuple[list[int], list[int]]:
  """``(kept, dropped)``: the n per class of ``transfer.n_per_class`` (0 = all, i.e. the
  largest class-balanced subset) that D^tr_b has, and those it has not."""
  y = np.asarray(target.y_train[0, : target.n_train[0]])
  top = splits.max_per_class(y, target.specs[0].loss)
  ns = config.transfer.n_per_class
  wanted = [top if int(n) == 0 else int(n) for n in (ns if isinstance(ns, tuple) else (ns,))]
  return sorted({n for n in wanted if n <= top}), sorted({n for n in wanted if n > top})


def subsets(config, ctx: Context, n: int) -> list[np.ndarray]:
  """One class-balanced subset of n per class per seed (seed s: ``rng(seed, n, s)``)."""
  y, kind = _target_rows(ctx)
  return [
    splits.subset(y, kind, n, np.random.default_rng([config.seed, n, s]))
    for s in range(config.num_seeds)
  ]


def _fine_tune_arm(config, name: str, src, **changes) -> Arm:
  t = config.transfer
  kwargs = dict(
    learning_rate=t.learning_rate,
    layer_decay=t.layer_decay,
    freeze_layers=t.freeze_layers,
    unfreeze_every=t.unfreeze_every,
    keep_head=t.head == "keep",
    source_row=t.source_row,
  )
  kwargs.update(changes)
  return Arm(name, src, **kwargs)


def curve_arms(config, ctx: Context, sources: dict, scratch_config: dict) -> dict[str, Arm]:
  """The four arms of the curve (``linear_probe``: the multi-task source, trunk frozen,
  a new head trained at ``transfer.probe_learning_rate``)."""
  t = config.transfer
  trunk = optim.num_levels(ctx.model(sources["mtl"].config)) - 1
  return {
    "scratch": Arm("scratch", None, t.scratch_learning_rate),
    "stl_pretrained": _fine_tune_arm(config, "stl_pretrained", sources["stl"]),
    "mtl_pretrained": _fine_tune_arm(config, "mtl_pretrained", sources["mtl"]),
    "linear_probe": Arm("linear_probe", sources["mtl"], t.probe_learning_rate, freeze_layers=trunk),
  }


def curve_specs(config, ctx: Context, sources: dict, scratch_config: dict):
  """``(specs, finish)``: the curve's runs (every arm × n × seed) and
  ``finish(results) -> {"curve", "curve_per_seed", "curve_delta_vs_scratch", "n_per_class",
  "dropped_n_per_class"}`` (the deltas paired by seed: same subset, same fresh head)."""
  kept, dropped = n_values(config, ctx.target_ts)
  if dropped:
    print(f"note: D^tr_b has fewer than {dropped} examples per class: dropped", file=sys.stderr)
  arms = curve_arms(config, ctx, sources, scratch_config)
  rows = {n: subsets(config, ctx, n) for n in kept}
  seeds = range(config.num_seeds)
  specs = [Spec(arm, s, rows[n][s]) for arm in arms.values() for n in kept for s in seeds]
  metric = ctx.target_ts.specs[0].primary_metric
  top = splits.max_per_class(*_target_rows(ctx))

  def finish(results: list[dict]) -> dict:
    res = iter(results)
    curve, per_seed = {}, {}
    for name in arms:
      curve[name], per_seed[name] = {}, {}
      for n in kept:
        d = describe([next(res)[metric] for _ in seeds])
        curve[name][str(n)] = {"mean": d["mean"], "ci95": d["ci95"]}
        per_seed[name][str(n)] = d["per_seed"]
    higher = HIGHER_IS_BETTER[metric]
    delta = {
      name: {n: _short(_paired(v, per_seed["scratch"][n], higher)) for n, v in by_n.items()}
      for name, by_n in per_seed.items()
      if name != "scratch"
    }
    return {
      "curve": curve,
      "curve_per_seed": per_seed,
      "curve_delta_vs_scratch": delta,
      "n_per_class": {str(n): {"examples": int(len(rows[n][0])), "all": n == top} for n in kept},
      "dropped_n_per_class": dropped,
    }

  return specs, finish


def adaptation_curve(config, ctx: Context, sources: dict, scratch_config: dict) -> dict:
  """``{"curve": {arm: {str(n): {"mean", "ci95"}}}, "curve_per_seed", "n_per_class",
  "dropped_n_per_class"}``: test metric vs n examples per class for every arm."""
  specs, finish = curve_specs(config, ctx, sources, scratch_config)
  return finish(run_specs(ctx, specs, scratch_config))


def _short(d: dict) -> dict:
  return {"mean": d["mean"], "ci95": d["ci95"]}


def _paired(values, ref, higher: bool) -> dict:
  sign = 1.0 if higher else -1.0
  return describe([sign * (a - b) for a, b in zip(values, ref)])


def practice_arms(config, ctx: Context, sources: dict) -> list[tuple[str, Arm]]:
  """Plain fine-tuning of the multi-task source (the reference) and one change each."""
  t, p, mtl = config.transfer, config.practices, sources["mtl"]
  trunk = optim.num_levels(ctx.model(mtl.config)) - 1
  plain = dict(layer_decay=1.0, freeze_layers=0, unfreeze_every=0, keep_head=False)
  arm = lambda name, **ch: _fine_tune_arm(
    config, name, mtl, **{**plain, "static_freeze": False, **ch}
  )
  return [
    ("reference: fine-tune all layers, new head", arm("reference")),
    (f"learning rate {t.scratch_learning_rate:g} (scratch's) instead of {t.learning_rate:g}",
     arm("rate", learning_rate=t.scratch_learning_rate)),
    (f"layer-wise decay {p.layer_decay:g}", arm("decay", layer_decay=p.layer_decay)),
    (f"freeze the bottom {p.freeze_layers} layer(s)", arm("freeze", freeze_layers=p.freeze_layers)),
    (f"gradual unfreezing, one level every {p.unfreeze_every} steps",
     arm("unfreeze", unfreeze_every=p.unfreeze_every)),
    ("keep the source head (row source_row)", arm("keep", keep_head=True)),
    ("linear probe (all trunk layers frozen)",
     Arm("probe", mtl, t.probe_learning_rate, freeze_layers=trunk)),
    ("no pre-training (scratch)", Arm("scratch", None, t.scratch_learning_rate)),
  ]  # fmt: skip


def practice_specs(config, ctx: Context, sources: dict):
  """``(specs, finish)``: every practice × seed at ``practices.n_per_class``, and
  ``finish(results) -> {"n_per_class", "metric", "rows"}`` (see :func:`practices`)."""
  kept, _ = n_values(config, ctx.target_ts)
  n = int(config.practices.n_per_class) or (kept[-1] if kept else 1)
  n = min(n, splits.max_per_class(*_target_rows(ctx)))
  rows = subsets(config, ctx, n)
  arms = practice_arms(config, ctx, sources)
  seeds = range(config.num_seeds)
  specs = [Spec(a, s, rows[s]) for _, a in arms for s in seeds]
  metric = ctx.target_ts.specs[0].primary_metric

  def finish(results: list[dict]) -> dict:
    k = len(seeds)
    vals = [[r[metric] for r in results[i : i + k]] for i in range(0, len(results), k)]
    out = []
    for (label, arm), v in zip(arms, vals):
      row = {"practice": label, "arm": arm.name, "test": describe(v)}
      row["delta_vs_reference"] = _paired(v, vals[0], HIGHER_IS_BETTER[metric])
      out.append(row)
    return {"n_per_class": n, "metric": metric, "rows": out}

  return specs, finish


def practices(config, ctx: Context, sources: dict, scratch_config: dict) -> dict:
  """Each practice's test metric at ``practices.n_per_class`` and its paired difference
  from the reference (positive = better, whatever the metric's direction)."""
  specs, finish = practice_specs(config, ctx, sources)
  return finish(run_specs(ctx, specs, scratch_config))


def cross_validate(config, ctx: Context, source, scratch_config: dict) -> dict:
  """k-fold CV over ``cv``'s grid on D^tr_b only (every fold × grid point in one program),
  the best point by mean validation metric, retrained on all its rows with every seed."""
  cv, t = config.cv, config.transfer
  y, kind = _target_rows(ctx)
  rng = np.random.default_rng([config.seed, 7])
  rows = np.arange(len(y)) if not cv.n_per_class else splits.subset(y, kind, cv.n_per_class, rng)
  folds = splits.kfold(rows, cv.folds, rng)
  as_tuple = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v,)
  grid = list(
    itertools.product(*(as_tuple(cv[k]) for k in ("learning_rate", "layer_decay", "freeze_layers")))
  )
  make = lambda lr, d, k, static: _fine_tune_arm(
    config, f"lr={lr:g} decay={d:g} freeze={k}", source,
    learning_rate=lr, layer_decay=d, freeze_layers=k, static_freeze=static,
  )  # fmt: skip
  arms = [make(*g, False) for g in grid]
  specs = [Spec(a, 0, tr, "train", va) for a in arms for tr, va in folds]
  res = run_specs(ctx, specs, scratch_config)
  metric = ctx.target_ts.specs[0].primary_metric
  table = []
  for i, (lr, d, k) in enumerate(grid):
    v = [r[metric] for r in res[i * len(folds) : (i + 1) * len(folds)]]
    table.append(
      {"learning_rate": lr, "layer_decay": d, "freeze_layers": k, "val_mean": float(np.mean(v)),
       "val_std": float(np.std(v, ddof=1)), "val_per_fold": v}
    )  # fmt: skip
  pick = max if HIGHER_IS_BETTER[metric] else min
  best = pick(range(len(grid)), key=lambda i: table[i]["val_mean"])
  final = make(*grid[best], True)
  res = run_specs(ctx, [Spec(final, s, rows) for s in range(config.num_seeds)], scratch_config)
  return {
    "folds": cv.folds,
    "rows": int(len(rows)),
    "metric": metric,
    "head": t.head,
    "unfreeze_every": t.unfreeze_every,
    "table": table,
    "best": {k: table[best][k] for k in ("learning_rate", "layer_decay", "freeze_layers")},
    "test": describe([r[metric] for r in res]),
  }
