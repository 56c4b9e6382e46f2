"""Fine-tuning many runs in one compiled program: seeds × data sizes × hyperparameters.

A *run* is one fine-tuning of the target model: its initial parameters, its training rows
(indices into the target's D^tr, so a subset of n examples per class or a CV fold), its
:class:`~mtl_jax.transfer.optim.Hparams`, its key and its evaluation rows. :class:`Runs`
stacks R of them on a leading axis and :class:`Finetuner` trains all R under one
``jax.vmap`` of a ``lax.scan`` over the steps inside one ``jax.jit``. Only the statically
frozen levels (``frozen_levels``: the labels of ``optax.partition``) and the sizes are
compiled in; rates, decay, the unfreezing schedule, data subsets and initial parameters
are data, so a whole grid or curve is one program and changing them never retraces.

Batches: ``batch_size`` rows drawn uniformly with replacement from the run's own rows
(``idx[:count]``); step t uses ``fold_in(rng, t)``. Evaluation: the target task's metrics
(:func:`mtl_jax.metrics.task_metrics`: ``accuracy``/``loss`` or ``mse``/``r2``/``loss`` in
label units) on rows ``eval_idx[:eval_count]`` of the ``eval_split`` (``test``, or
``train`` for a validation fold).
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mtl_jax.losses import per_example_loss
from mtl_jax.metrics import task_metrics
from mtl_jax.tasks import TaskSet
from mtl_jax.transfer import optim


class Target(NamedTuple):
  """One target task's data as device arrays (labels as stored in a :class:`TaskSet`)."""

  x_train: jax.Array  # [N, ...] (padding rows cut off)
  y_train: jax.Array  # [N, Y]
  x_test: jax.Array
  y_test: jax.Array
  kind: jax.Array  # loss kind id
  out_mask: jax.Array  # [O]
  label_mean: jax.Array  # [Y]
  label_std: jax.Array

  @classmethod
  def from_taskset(cls, ts: TaskSet, task: int = 0) -> "Target":
    n, m = int(ts.n_train[task]), int(ts.n_test[task])
    return cls(
      jnp.asarray(ts.x_train[task, :n]),
      jnp.asarray(ts.y_train[task, :n]),
      jnp.asarray(ts.x_test[task, :m]),
      jnp.asarray(ts.y_test[task, :m]),
      jnp.asarray(ts.kind_ids()[task]),
      jnp.asarray(ts.output_mask()[task]),
      jnp.asarray(ts.label_mean[task]),
      jnp.asarray(ts.label_std[task]),
    )


class Runs(NamedTuple):
  """R fine-tuning runs; every leaf has a leading axis R."""

  params: Any  # initial target-model parameters
  idx: jax.Array  # [R, M] training rows (indices into D^tr; past count: padding)
  count: jax.Array  # [R]
  hp: optim.Hparams
  rng: jax.Array  # [R, 2] keys
  eval_idx: jax.Array  # [R, V] evaluation rows of eval_split
  eval_count: jax.Array  # [R]


def pad_rows(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
  """``([R, M] int32 padded with 0, [R] counts)`` from R index arrays."""
  m = max(1, max(len(r) for r in rows))
  out = np.zeros((len(rows), m), np.int32)
  for i, r in enumerate(rows):
    out[i, : len(r)] = r
  return out, np.array([len(r) for r in rows], np.int32)


def make_runs(params, train_rows, hps: list[optim.Hparams], keys, eval_rows) -> Runs:
  """Stacks per-run pieces (lists of length R; ``params`` already stacked) into :class:`Runs`."""
  idx, count = pad_rows(train_rows)
  eval_idx, eval_count = pad_rows(eval_rows)
  hp = jax.tree.map(lambda *v: jnp.stack(v), *hps)
  return Runs(params, jnp.asarray(idx), jnp.asarray(count), hp, keys, eval_idx, eval_count)


class Finetuner:
  """``finetuner(runs, target) -> results``: trains and evaluates R runs in one program.

  Args:
    model: the target model (one task).
    template: one run's parameters (for the level of every leaf).
    frozen_levels: levels frozen for the whole run *by configuration*: label
      :data:`~mtl_jax.transfer.optim.FROZEN` (no optimiser state) and ``stop_gradient``
      (no gradient computed).
    num_steps, batch_size: per run.
    base: ``adam`` or ``sgd`` (plain, no momentum), scaled per level.
    eval_split: ``test`` or ``train`` (validation rows of D^tr).

  Results (leading axis R): ``params`` (final), ``train_loss [R, num_steps]`` (the loss of
  each step) and the task's metrics on the evaluation rows. ``traces`` counts how often
  the program was traced (one per new shape, never per schedule stage or grid point).
  """

  def __init__(
    self,
    model,
    template,
    frozen_levels=frozenset(),
    *,
    num_steps: int,
    batch_size: int,
    base: str = "adam",
    eval_split: str = "test",
  ):
    optim._base(base)  # an unknown name fails here, not inside the trace
    self.model, self.num_steps, self.batch_size = model, num_steps, batch_size
    self.base, self.eval_split = base, eval_split
    self.n_levels = optim.num_levels(model)
    self.level_tree = optim.levels(model, template)
    self.frozen = frozenset(frozen_levels)
    self.labels = optim.labels(self.level_tree, self.frozen)
    self.traces = 0
    self._fn = jax.jit(jax.vmap(self._one, in_axes=(0, 0, 0, 0, 0, 0, 0, None)))

  def __call__(self, runs: Runs, target: Target) -> dict:
    return self._fn(*runs, target)

  def optimizer(self, hp: optim.Hparams) -> optax.GradientTransformation:
    return optim.optimizer(self.labels, hp, self.n_levels, self.base)

  def _loss(self, params, hp, step, x, y, target: Target):
    p = optim.effective_params(params, self.level_tree, self.frozen, hp, step)
    out = self.model.apply(p, x[None], jnp.zeros((1,), jnp.int32))[0]
    return per_example_loss(out, y, target.kind, target.out_mask).mean()

  def _one(self, params, idx, count, hp, rng, eval_idx, eval_count, target: Target):
    self.traces += 1
    opt = self.optimizer(hp)

    def step(carry, t):
      p, s = carry
      u = jax.random.uniform(jax.random.fold_in(rng, t), (self.batch_size,))
      rows = idx[jnp.minimum((u * count).astype(jnp.int32), count - 1)]
      x, y = target.x_train[rows], target.y_train[rows]
      loss, g = jax.value_and_grad(self._loss)(p, hp, t, x, y, target)
      updates, s = opt.update(g, s, p)
      return (optax.apply_updates(p, updates), s), loss

    steps = jnp.arange(self.num_steps, dtype=jnp.int32)
    (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), steps)
    x = getattr(target, f"x_{self.eval_split}")[eval_idx]
    y = getattr(target, f"y_{self.eval_split}")[eval_idx]
    out = self.model.apply(params, x[None], jnp.zeros((1,), jnp.int32))[0]
    m = task_metrics(
      out, y, target.kind, target.out_mask, eval_count, target.label_mean, target.label_std
    )
    return {**m, "params": params, "train_loss": losses}
