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
  def from_taskset(cls, ts: TaskSet, as_array=jnp.asarray) -> "DeviceData":
    """The task set's arrays; ``as_array=np.asarray`` keeps them on the host (streaming)."""
    return cls(
      as_array(ts.x_train),
      as_array(ts.y_train),
      as_array(ts.n_train),
      as_array(ts.x_test),
      as_array(ts.y_test),
      as_array(ts.n_test),
      as_array(ts.kind_ids()),
      as_array(ts.output_mask()),
      as_array(ts.label_mean),
      as_array(ts.label_std),
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


def batch_fields() -> tuple[str, ...]:
  """The per-example fields of :class:`TaskBatch` (every field but ``task``).

  Convention: batch field ``f`` is gathered from :class:`DeviceData`'s ``f_train`` (and a
  test split's rows from ``f_test``), each ``[T, N_max, ...]``; every such field is sampled
  with the same task and example ids, on the device (:func:`gather_batch`) as on the host
  (:mod:`mtl_jax.data.streaming`).
  """
  return tuple(f for f in TaskBatch._fields if f != "task")


def sample_ids(
  rng: jax.Array, n_train: jax.Array, k: int, batch_size: int, shared_inputs: bool = False
) -> tuple[jax.Array, jax.Array]:
  """The task ids ``[K]`` and example ids ``[K, B]`` that :func:`sample_batch` draws with
  ``rng`` (with ``shared_inputs`` every row of the example ids is the same). The same key
  gives the same ids on any device: the streaming path computes them on the host's CPU."""
  k_task, k_ex = jax.random.split(rng)
  task = sample_tasks(k_task, n_train.shape[0], k)
  n = n_train[task]
  u = jax.random.uniform(k_ex, (1 if shared_inputs else k, batch_size))
  idx = jnp.minimum((u * n[:, None]).astype(jnp.int32), n[:, None] - 1)
  return task, idx


def gather_batch(data: DeviceData, task: jax.Array, idx: jax.Array) -> TaskBatch:
  """The :class:`TaskBatch` of training rows ``idx [K, B]`` of tasks ``task [K]``."""
  rows = {f: getattr(data, f"{f}_train")[task[:, None], idx] for f in batch_fields()}
  return TaskBatch(task=task, **rows)


def sample_batch(
  rng: jax.Array, data: DeviceData, k: int, batch_size: int, shared_inputs: bool = False
) -> TaskBatch:
  """Samples K tasks, then ``batch_size`` training examples per task (with replacement).

  Example ids are uniform over each task's own ``n_train`` rows (padding is never drawn).
  With ``shared_inputs`` (one p(x), multi-label) all tasks get the same example ids, so the
  batch is one set of inputs labelled for every task.
  """
  task, idx = sample_ids(rng, data.n_train, k, batch_size, shared_inputs)
  return gather_batch(data, task, idx)
