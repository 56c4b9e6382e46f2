"""Device-resident task data and the on-device task-batch sampler (the lecture's steps 1–2)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mtl_jax.tasks import TaskSet


class DeviceData(NamedTuple):
  """A :class:`TaskSet`'s padded arrays as device arrays (a pytree; jit-friendly)."""

  x_train: jax.Array
  y_train: jax.Array
  n_train: jax.Array
  x_test: jax.Array
  y_test: jax.Array
  n_test: jax.Array
  kind: jax.Array  # [T] loss kind ids
  out_mask: jax.Array  # [T, O]
  label_mean: jax.Array  # [T, Y]
  label_std: jax.Array  # [T, Y]

  @classmethod
  def from_taskset(cls, ts: TaskSet) -> "DeviceData":
    return cls(
      jnp.asarray(ts.x_train),
      jnp.asarray(ts.y_train),
      jnp.asarray(ts.n_train),
      jnp.asarray(ts.x_test),
      jnp.asarray(ts.y_test),
      jnp.asarray(ts.n_test),
      jnp.asarray(ts.kind_ids()),
      jnp.asarray(ts.output_mask()),
      jnp.asarray(ts.label_mean),
      jnp.asarray(ts.label_std),
    )


class TaskBatch(NamedTuple):
  """K sampled tasks with B examples each: ``x [K, B, ...]``, ``y [K, B, Y]``, ``task [K]``."""

  x: jax.Array
  y: jax.Array
  task: jax.Array


def sample_tasks(rng: jax.Array, num_tasks: int, k: int) -> jax.Array:
  """K distinct task ids drawn uniformly, whatever each task's data size.

  The lecture's step 1: every task is equally likely, so small tasks are not drowned out
  by large ones. ``k == num_tasks`` returns all tasks (in index order).
  """
  if k == num_tasks:
    return jnp.arange(num_tasks)
  return jax.random.choice(rng, num_tasks, (k,), replace=False)


def sample_batch(
  rng: jax.Array, data: DeviceData, k: int, batch_size: int, shared_inputs: bool = False
) -> TaskBatch:
  """Samples K tasks, then ``batch_size`` training examples per task (with replacement).

  Example ids are uniform over each task's own ``n_train`` rows (padding is never drawn).
  With ``shared_inputs`` (one p(x), multi-label) all tasks get the same example ids, so the
  batch is one set of inputs labelled for every task.
  """
  k_task, k_ex = jax.random.split(rng)
  t = data.n_train.shape[0]
  task = sample_tasks(k_task, t, k)
  n = data.n_train[task]
  if shared_inputs:
    u = jax.random.uniform(k_ex, (1, batch_size))
  else:
    u = jax.random.uniform(k_ex, (k, batch_size))
  idx = jnp.minimum((u * n[:, None]).astype(jnp.int32), n[:, None] - 1)
  return TaskBatch(data.x_train[task[:, None], idx], data.y_train[task[:, None], idx], task)
