"""Machinery the lecture's experiments share: arms at matched size, seeds, paired Δm%.

An *arm* is one model (with its kwargs) trained with ``config.num_seeds`` seeds in one
program; :func:`run_arm` returns its per-seed test (and train) metrics. :func:`match_width`
picks the width that brings a model's total parameter count closest to a target, so arms
are compared at (nearly) the same size. :func:`paired_delta_m` is Δm% per seed against a
reference arm trained on the same seeds.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mtl_jax import build, loop, models
from mtl_jax import metrics as metrics_lib
from mtl_jax.configs import switch
from mtl_jax.summary import ci95
from mtl_jax.tasks import TaskSet


def count_total(name: str, kwargs: dict, taskset: TaskSet) -> int:
  """θ^sh + θ^{1..T} parameter count of model ``name`` on ``taskset`` (no compute)."""
  model = models.get(
    name,
    num_tasks=taskset.num_tasks,
    output_size=taskset.output_size,
    input_shape=taskset.input_shape,
    descriptors=taskset.descriptors,
    **kwargs,
  )
  x = jnp.asarray(taskset.x_train[0, :2])
  return models.count_params(jax.eval_shape(model.init, jax.random.PRNGKey(0), x))


def match_width(name: str, kwargs: dict, taskset: TaskSet, target: int, hi: int = 1024) -> int:
  """The ``width`` in [1, hi] whose total count is closest to ``target`` (bisection: the
  count grows with the width)."""
  count = lambda w: count_total(name, {**kwargs, "width": w}, taskset)
  lo_w, hi_w = 1, hi
  while hi_w - lo_w > 1:
    mid = (lo_w + hi_w) // 2
    lo_w, hi_w = (mid, hi_w) if count(mid) < target else (lo_w, mid)
  return min((lo_w, hi_w), key=lambda w: abs(count(w) - target))


def arm_config(
  base: ml_collections.ConfigDict, name: str, kwargs: dict
) -> ml_collections.ConfigDict:
  """``base`` with model ``name`` (its own defaults, then ``kwargs``) and no baseline."""
  config = ml_collections.ConfigDict(base.to_dict())
  switch(config, "model", name)
  for key, value in kwargs.items():
    config.model_kwargs[key] = value
  config.baseline = ""
  return config


def run_arm(config: ml_collections.ConfigDict, taskset: TaskSet, train_metrics: bool = False):
  """Trains ``config`` (all its seeds in one program); per-seed test (and train) metrics.

  Returns:
    ``{"test": [{task: {metric: v}}] * N, "train": same or None, "params": counts}``.
  """
  run = build.prepare_run(config, taskset)
  out = loop.train_run(run, progress=False)
  train = None
  if train_metrics and run.stream is not None:  # the train split fed from the host
    raw = loop.evaluate_streamed(run, out["state"].params, "train")
    train = [metrics_lib.metrics_by_task(taskset, m) for m in raw]
  elif train_metrics:
    fn = lambda p, d: metrics_lib.evaluate(run.model, p, d, split="train")
    axes = (0, 0 if run.per_seed_data else None)  # seed s on its own data (resample_data)
    fn = jax.jit(fn if run.num_seeds == 1 else jax.vmap(fn, in_axes=axes))
    raw = jax.device_get(fn(out["state"].params, run.data))
    seeds = range(run.num_seeds)
    pick = (lambda s: raw) if run.num_seeds == 1 else (lambda s: jax.tree.map(lambda v: v[s], raw))
    train = [metrics_lib.metrics_by_task(taskset, pick(s)) for s in seeds]
  return {"test": out["tasks_per_seed"], "train": train, "params": out["params"]}


def paired_delta_m(taskset: TaskSet, arm: list[dict], reference: list[dict]) -> list[float]:
  """Δm% of ``arm`` vs ``reference`` per seed (seed s against seed s)."""
  return [metrics_lib.delta_m(taskset, a, r)[0] for a, r in zip(arm, reference)]


def mean_metric(per_seed: list[dict], metric: str) -> list[float]:
  """Per seed, the mean of ``metric`` over tasks."""
  return [float(np.mean([m[metric] for m in seed.values()])) for seed in per_seed]


def describe(values) -> dict:
  """``{"mean", "ci95", "per_seed"}`` of a list of per-seed values."""
  values = [float(v) for v in values]
  return {"mean": float(np.mean(values)), "ci95": ci95(values), "per_seed": values}


def fmt(d: dict, digits: int = 2) -> str:
  """``mean ± CI half-width`` (just the mean for one seed)."""
  if not d["ci95"]:
    return f"{d['mean']:+.{digits}f}"
  return f"{d['mean']:+.{digits}f} ± {(d['ci95'][1] - d['ci95'][0]) / 2:.{digits}f}"
