"""TAG's inter-task affinity, measured inside the compiled step of an all-task run.

Every ``every`` steps, each task i's gradient of θ^sh takes a lookahead step (the run's
own optax update, from the current optimiser state, which is then discarded) and every
task j's loss is measured on the same batch:
``Z[i, j] = 1 − L_j(θ^sh_{+i}, θ^j) / L_j(θ^sh, θ^j)``. The T lookaheads are one ``vmap``
under ``lax.cond``; the run's own update is :func:`mtl_jax.train.train_step`, untouched
(its parameters are bit-identical to a run that measures nothing). The run's average of
Z is TAG's affinity; the cosine similarity of the same per-task gradients of θ^sh is
averaged alongside (TAG's "CS" baseline).
"""

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from mtl_jax import loop
from mtl_jax.build import build_optimizer, prepare_run, require_device_data
from mtl_jax.data.sampling import DeviceData, sample_batch
from mtl_jax.gradients import Objective, per_task_grads, sampled_losses
from mtl_jax.tasks import TaskSet
from mtl_jax.train import TrainState

ESTIMATORS = ("lookahead", "cosine")  # TAG's Z | gradient cosine similarity
LOOKAHEADS = ("optimizer", "sgd")  # the run's optax step | θ^sh − lr·∇L_i


class AffinityState(NamedTuple):
  """A :class:`TrainState` plus the running sums of the measured affinities.

  ``step`` and ``params`` forward to the train state, so :func:`mtl_jax.train.make_chunk`
  and :func:`mtl_jax.loop.train_run` run it like a plain state.
  """

  train: TrainState
  z_sum: jax.Array  # [T, T] Σ over measured steps of Z_{i→j}
  cos_sum: jax.Array  # [T, T] Σ of the cosine similarity of the shared gradients
  count: jax.Array  # number of measured steps

  @property
  def step(self):
    return self.train.step

  @property
  def params(self):
    return self.train.params


def lookahead_affinity(
  obj: Objective,
  optimizer: optax.GradientTransformation,
  params,
  opt_state,
  batch,
  sgd_lr: float | None = None,
) -> tuple[jax.Array, jax.Array]:
  """TAG's lookahead affinity and the gradient cosine similarity on one all-task batch.

  Each task i's gradient of θ^sh (zeros elsewhere) goes through ``optimizer.update`` from
  ``opt_state`` (the result state is discarded); θ^sh_{+i} then meets every task j's own
  θ^j on the same batch. The T lookaheads are one ``vmap``. With ``sgd_lr`` the lookahead
  is the plain step θ^sh − sgd_lr·∇L_i instead. The batch must hold every task in index
  order (``batch.task = 0..T−1``, as :func:`mtl_jax.data.sampling.sample_batch` draws it
  with K = T).

  Returns:
    ``(z [T, T], cos [T, T])`` with ``z[i, j] = 1 − L_j(θ^sh_{+i}, θ^j) / L_j(θ^sh, θ^j)``
    and ``cos[i, j]`` the cosine of the two tasks' gradients of θ^sh.
  """
  losses, g_sh, _ = per_task_grads(obj, params, batch)
  zero_tasks = jax.tree.map(jnp.zeros_like, params["tasks"])
  task_k = jax.tree.map(lambda p: p[batch.task], params["tasks"])

  def after_step(g_i):
    if sgd_lr is not None:
      shared = jax.tree.map(lambda p, g: p - sgd_lr * g, params["shared"], g_i)
    else:
      updates, _ = optimizer.update({"shared": g_i, "tasks": zero_tasks}, opt_state, params)
      shared = optax.apply_updates(params["shared"], updates["shared"])
    return sampled_losses(obj, shared, task_k, batch)

  ahead = jax.vmap(after_step)(g_sh)  # [T (stepped task i), T (measured task j)]
  z = 1.0 - ahead / losses[None]
  flat = jnp.concatenate(
    [x.reshape(x.shape[0], -1).astype(jnp.float32) for x in jax.tree.leaves(g_sh)], 1
  )
  unit = flat / jnp.maximum(jnp.linalg.norm(flat, axis=1, keepdims=True), 1e-12)
  return z, unit @ unit.T


def affinity_step(
  state: AffinityState,
  *,
  train_step,
  obj: Objective,
  optimizer: optax.GradientTransformation,
  data: DeviceData,
  batch_size: int,
  every: int,
  sgd_lr: float | None = None,
):
  """``train_step`` unchanged, plus the affinity on its own batch every ``every`` steps.

  The batch is drawn exactly as :func:`mtl_jax.train.train_step` draws it (all T tasks,
  same key), so Z is measured on the examples the step then trains on.
  """
  ts = state.train
  t = data.n_train.shape[0]

  def measure(sums):
    k_batch, _ = jax.random.split(jax.random.fold_in(ts.rng, ts.step))
    batch = sample_batch(k_batch, data, t, batch_size, obj.shared_inputs)
    z, cos = lookahead_affinity(obj, optimizer, ts.params, ts.opt_state, batch, sgd_lr)
    return sums[0] + z, sums[1] + cos, sums[2] + 1

  sums = (state.z_sum, state.cos_sum, state.count)
  z_sum, cos_sum, count = jax.lax.cond(ts.step % every == 0, measure, lambda s: s, sums)
  new, metrics = train_step(ts)
  return AffinityState(new, z_sum, cos_sum, count), metrics


def check_all_labelled(taskset) -> None:
  """Raises ``ValueError`` for a task set with missing labels (an absent task's lookahead
  ratio L_j(θ_{+i}) / L_j(θ) would be 0 / 0)."""
  if taskset.has_missing_labels:
    raise ValueError(
      f"task grouping: task set {taskset.name!r} has missing labels, which the lookahead "
      "affinities do not support; use a task set with every label present"
    )


def make_affinity_step(run, every: int, sgd_lr: float | None = None):
  """``(step, state)``: :func:`affinity_step` bound for a built run, and its first state."""
  t = run.taskset.num_tasks
  check_all_labelled(run.taskset)
  obj = Objective(run.model, run.data.kind, run.data.out_mask, run.taskset.shared_inputs)
  step = functools.partial(
    affinity_step,
    train_step=run.train_step,
    obj=obj,
    optimizer=build_optimizer(run.config),
    data=run.data,
    batch_size=run.config.batch_size,
    every=every,
    sgd_lr=sgd_lr,
  )
  zeros = (jnp.zeros((t, t)), jnp.zeros((t, t)), jnp.zeros((), jnp.int32))
  return step, AffinityState(run.state, *zeros)


def check_all_tasks(config: ml_collections.ConfigDict, t: int) -> None:
  """ValueError unless every step trains all T tasks (``tasks_per_batch`` 0 or T)."""
  k = config.get("tasks_per_batch", 0)
  if k not in (0, t):
    raise ValueError(
      f"affinity needs every task every step: tasks_per_batch must be 0 or T={t}, got {k}"
    )


def affinity_run(
  config: ml_collections.ConfigDict,
  taskset: TaskSet,
  every: int = 10,
  lookahead: str = "optimizer",
  lookahead_lr: float = 0.1,
  log_path: str | None = None,
  progress: bool = False,
) -> dict:
  """Trains all tasks together (``config``) and measures the affinities every ``every`` steps.

  ``lookahead``: ``"optimizer"`` (the run's own optax update from its current state) or
  ``"sgd"`` (θ^sh − ``lookahead_lr``·∇L_i).

  Returns:
    :func:`mtl_jax.loop.train_run`'s result (test metrics of the all-task network) plus
    ``affinity`` (lookahead Z averaged over the measured steps), ``cosine`` (the same for
    the gradient cosine similarity) and ``measured_steps``.
  """
  t = taskset.num_tasks
  check_all_tasks(config, t)
  if int(every) != every or every < 1:
    raise ValueError(f"grouping.affinity_every must be an integer >= 1, got {every}")
  if lookahead not in LOOKAHEADS:
    raise ValueError(f"unknown grouping.lookahead {lookahead!r}; valid: {', '.join(LOOKAHEADS)}")
  run = prepare_run(config, taskset)
  require_device_data(run, "the grouping affinity run")  # its step samples from run.data
  sgd_lr = float(lookahead_lr) if lookahead == "sgd" else None
  step, state = make_affinity_step(run, int(every), sgd_lr)
  result = loop.train_run(
    dataclasses.replace(run, state=state, train_step=step), log_path, progress, "affinity"
  )
  acc = jax.device_get(result["state"])
  n = max(int(acc.count), 1)
  result["affinity"] = np.asarray(acc.z_sum, np.float64) / n
  result["cosine"] = np.asarray(acc.cos_sum, np.float64) / n
  result["measured_steps"] = int(acc.count)
  result["state"] = acc.train
  return result


def estimator_matrix(aff: dict, estimator: str) -> np.ndarray:
  """The averaged matrix of :func:`affinity_run`'s result for ``estimator``."""
  if estimator not in ESTIMATORS:
    raise ValueError(f"unknown grouping.estimator {estimator!r}; valid: {', '.join(ESTIMATORS)}")
  return aff["affinity" if estimator == "lookahead" else "cosine"]
