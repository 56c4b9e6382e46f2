"""Arms of a transfer study and the grouping of their runs into as few programs as possible.

An :class:`Arm` is one way of solving the target task: from scratch, or fine-tuned from a
source with given practices (rate, layer decay, frozen layers, gradual unfreezing, head).
A :class:`Spec` is one run of an arm (a seed, its training rows, its evaluation rows).
:func:`run_specs` trains a list of specs: runs that share a compiled structure (the target
model, the statically frozen levels, the evaluation split) go into one
:class:`~mtl_jax.transfer.runner.Finetuner` call, vmapped; everything else is data.

Seeds: run with seed s starts from source seed ``s % S`` and a fresh initialisation from
``fold_in(PRNGKey(config.seed), s)`` (the same for every arm, so arms are paired by seed:
the scratch network of seed s and the re-initialised heads of seed s are the same draw).
"""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np

from mtl_jax.tasks import TaskSet
from mtl_jax.transfer import optim, runner
from mtl_jax.transfer import source as source_lib


@dataclasses.dataclass(frozen=True, eq=False)  # compared and hashed by identity
class Arm:
  """One way to learn the target: ``source=None`` trains from scratch.

  ``freeze_layers`` bottom trunk layers never train: statically (label ``frozen``, no
  optimiser state, no gradient) when ``static_freeze``, else through the traced schedule
  (same numbers, and runs with different values then share one program).
  """

  name: str
  source: object | None  # a source.Source, or None for scratch
  learning_rate: float
  layer_decay: float = 1.0
  freeze_layers: int = 0
  unfreeze_every: int = 0
  keep_head: bool = False
  static_freeze: bool = True
  source_row: int = 0


@dataclasses.dataclass(frozen=True)
class Spec:
  arm: Arm
  seed: int
  train_rows: np.ndarray
  eval_split: str = "test"
  eval_rows: np.ndarray | None = None  # None: every row of the split


class Context:
  """What every run of a study shares: the target task, its models, compiled programs."""

  def __init__(self, target: TaskSet, seed: int, *, num_steps: int, batch_size: int, base: str):
    self.target_ts = target
    self.target = runner.Target.from_taskset(target)
    self.seed, self.num_steps, self.batch_size, self.base = seed, num_steps, batch_size, base
    self._models, self._finetuners, self._fresh = {}, {}, {}
    self.min_seeds = 1  # initialise at least this many seeds at once

  def model(self, config: dict):
    """The target model of a source config (cached by architecture)."""
    key = _model_key(config)
    if key not in self._models:
      self._models[key] = source_lib.target_model(config, self.target_ts)
    return self._models[key]

  def fresh(self, model, seeds: np.ndarray):
    """Fresh parameters of run seeds ``seeds`` (from ``fold_in(PRNGKey(seed), s)``): all
    seeds up to the largest are initialised in one compiled call and kept."""
    need = int(np.max(seeds)) + 1
    have = self._fresh.get(id(model))
    if have is None or jax.tree.leaves(have)[0].shape[0] < need:
      base = jax.random.PRNGKey(self.seed)
      keys = jnp.stack([jax.random.fold_in(base, s) for s in range(max(need, self.min_seeds))])
      have = self._fresh[id(model)] = source_lib.init_params(model, self.target_ts, keys)
    return jax.tree.map(lambda p: p[np.asarray(seeds)], have)

  def finetuner(self, key, model, template, frozen: frozenset, eval_split: str):
    k = (key, frozen, eval_split)
    if k not in self._finetuners:
      self._finetuners[k] = runner.Finetuner(
        model,
        template,
        frozen,
        num_steps=self.num_steps,
        batch_size=self.batch_size,
        base=self.base,
        eval_split=eval_split,
      )
    return self._finetuners[k]


def _model_key(config: dict) -> str:
  return json.dumps([config["model"], config.get("model_kwargs") or {}], sort_keys=True)


def frozen_levels(n_levels: int, freeze_layers: int) -> frozenset:
  """The levels (0 = head) of the ``freeze_layers`` bottom trunk layers."""
  return frozenset(range(n_levels - freeze_layers, n_levels))


def _initial(ctx: Context, arm: Arm, model, seeds: np.ndarray):
  fresh = ctx.fresh(model, seeds)
  if arm.source is None:
    return fresh
  return source_lib.transplant(arm.source, model, fresh, seeds, arm.keep_head, arm.source_row)


def _group_key(ctx: Context, spec: Spec, scratch_config: dict):
  arm = spec.arm
  config = arm.source.config if arm.source is not None else scratch_config
  model = ctx.model(config)
  n = optim.num_levels(model)
  frozen = frozen_levels(n, arm.freeze_layers) if arm.static_freeze else frozenset()
  return (_model_key(config), frozen, spec.eval_split), model


def run_specs(ctx: Context, specs: list[Spec], scratch_config: dict) -> list[dict]:
  """Trains every spec (grouped into shared programs); per spec its metrics (floats) and
  ``final_loss`` (mean training loss of the last 10% of steps)."""
  groups = {}
  for i, spec in enumerate(specs):
    key, model = _group_key(ctx, spec, scratch_config)
    groups.setdefault(key, (model, []))[1].append(i)
  out = [None] * len(specs)
  for (mkey, frozen, split), (model, members) in groups.items():
    res = _run_group(ctx, [specs[i] for i in members], model, (mkey, frozen, split))
    for i, r in zip(members, res):
      out[i] = r
  return out


def _run_group(ctx: Context, specs: list[Spec], model, key) -> list[dict]:
  mkey, frozen, split = key
  n_levels = optim.num_levels(model)
  by_arm = {}
  for j, spec in enumerate(specs):
    by_arm.setdefault(spec.arm, []).append(j)
  order = [j for members in by_arm.values() for j in members]
  parts = [
    _initial(ctx, arm, model, np.array([specs[j].seed for j in members]))
    for arm, members in by_arm.items()
  ]
  params = jax.tree.map(lambda *p: jnp.concatenate(p), *parts)
  template = jax.tree.map(lambda p: p[0], params)
  ordered = [specs[j] for j in order]
  n_eval = ctx.target.x_test.shape[0] if split == "test" else ctx.target.x_train.shape[0]
  hps = [
    optim.hparams(
      s.arm.learning_rate, s.arm.layer_decay, n_levels, s.arm.freeze_layers, s.arm.unfreeze_every
    )
    for s in ordered
  ]
  base = jax.random.PRNGKey(ctx.seed + 1)
  keys = jnp.stack([jax.random.fold_in(base, s.seed) for s in ordered])  # paired batches
  evals = [s.eval_rows if s.eval_rows is not None else np.arange(n_eval) for s in ordered]
  runs = runner.make_runs(params, [s.train_rows for s in ordered], hps, keys, evals)
  fn = ctx.finetuner(key, model, template, frozen, split)
  res = jax.device_get(fn(runs, ctx.target))
  tail = max(1, ctx.num_steps // 10)
  results = [None] * len(specs)
  for pos, j in enumerate(order):
    r = {k: float(v[pos]) for k, v in res.items() if k not in ("params", "train_loss")}
    r["final_loss"] = float(np.mean(res["train_loss"][pos, -tail:]))
    results[j] = r
  return results
