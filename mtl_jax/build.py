"""Building a run from its config: task set, model, optimizer, train step, state, resume.

:func:`prepare_run` does all of it and restores the latest checkpoint, so everything that
can fail (a bad hyperparameter, a model that cannot serve the method, an incompatible
checkpoint) fails before the first file is written. A baseline is built the same way from
:func:`mtl_jax.configs.baseline_config`.
"""

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mtl_jax import data as data_lib
from mtl_jax import models, sharding
from mtl_jax.checkpoint import Checkpointer, CheckpointError
from mtl_jax.configs import baseline_config, component_kwargs
from mtl_jax.configs import factory as component_factory
from mtl_jax.data import streaming
from mtl_jax.data.sampling import DeviceData, TaskBatch
from mtl_jax.tasks import TaskSet
from mtl_jax.train import make_optimizer, make_train_step


def build_taskset(config: ml_collections.ConfigDict) -> TaskSet:
  """The task set ``config.taskset`` with ``config.taskset_kwargs``."""
  return data_lib.get_taskset(config.taskset, **component_kwargs(config, "taskset"))


def resample_data(config: ml_collections.ConfigDict) -> bool:
  """``config.resample_data`` (False when absent): with N > 1 seeds, seed s trains on its
  own task set, built with data seed :func:`data_seed` + s."""
  return bool(config.get("resample_data", False))


def data_seed(config: ml_collections.ConfigDict) -> int:
  """The task set's data seed: ``config.taskset_kwargs.seed``, else its builder's default.

  Raises:
    ValueError: the builder of ``config.taskset`` takes no ``seed`` (so the data cannot be
      redrawn per seed, as ``config.resample_data`` asks).
  """
  kwargs = component_kwargs(config, "taskset")
  param = inspect.signature(component_factory("taskset", config.taskset)).parameters.get("seed")
  if param is None or param.kind not in (param.KEYWORD_ONLY, param.POSITIONAL_OR_KEYWORD):
    raise ValueError(
      f"resample_data=True draws each seed's own data, but task set {config.taskset!r} "
      "takes no seed argument; set --config.resample_data=False (every seed then trains "
      "on the same data) or give its builder a seed parameter"
    )
  seed = kwargs.get("seed", param.default)
  if not isinstance(seed, int) or isinstance(seed, bool):
    raise ValueError(f"taskset_kwargs.seed must be an integer data seed, got {seed!r}")
  return seed


def seed_tasksets(config: ml_collections.ConfigDict, taskset: TaskSet) -> list[TaskSet]:
  """With ``resample_data``, seed s's task set: ``config.taskset`` built with data seed
  :func:`data_seed` + s (seed 0's is ``taskset``, which must be built from ``config``).

  Raises:
    ValueError: a seed's task set differs from seed 0's in its tasks or input shape.
  """
  base = data_seed(config)
  out = [taskset]
  for s in range(1, num_seeds(config)):
    kwargs = {**component_kwargs(config, "taskset"), "seed": base + s}
    ts = data_lib.get_taskset(config.taskset, **kwargs)
    same = ts.specs == taskset.specs and ts.input_shape == taskset.input_shape
    if not same or ts.label_width != taskset.label_width:
      raise ValueError(
        f"resample_data: task set {config.taskset!r} with data seed {base + s} has other "
        f"tasks or input shapes than with data seed {base}; every seed needs the same tasks"
      )
    out.append(ts)
  return out


def _stacked_data(tasksets: list[TaskSet]) -> DeviceData:
  """One :class:`DeviceData` with a leading seed axis; each split is zero-padded to the
  largest N_max over the seeds (rows past ``n_*`` are never sampled nor counted)."""
  each = [DeviceData.from_taskset(ts) for ts in tasksets]
  padded = ("x_train", "y_train", "x_test", "y_test")

  def stack(field: str):  # on the host: no eager device ops to compile
    leaves = [np.asarray(getattr(d, field)) for d in each]
    if field in padded:  # [T, N_max, ...]: pad N_max
      n = max(v.shape[1] for v in leaves)
      widths = lambda v: [(0, 0), (0, n - v.shape[1])] + [(0, 0)] * (v.ndim - 2)
      leaves = [np.pad(v, widths(v)) for v in leaves]
    return jnp.asarray(np.stack(leaves))

  return DeviceData(*(stack(field) for field in DeviceData._fields))


def _as_baseline(config: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict(config.to_dict())
  config.baseline = name
  return baseline_config(config)


def build_model(config: ml_collections.ConfigDict, taskset: TaskSet, name: str | None = None):
  """``config.model`` (or the baseline ``name``) sized for ``taskset``."""
  if name is not None and name != config.model:
    config = _as_baseline(config, name)
  kwargs = component_kwargs(config, "model")
  try:
    return models.get(
      config.model,
      num_tasks=taskset.num_tasks,
      output_size=taskset.output_size,
      input_shape=taskset.input_shape,
      descriptors=taskset.descriptors,
      **kwargs,
    )
  except TypeError as e:
    raise ValueError(f"model {config.model!r}: bad model_kwargs {sorted(kwargs)}: {e}") from e


def build_optimizer(config: ml_collections.ConfigDict):
  """The optax chain from ``optimizer``, ``learning_rate``, ``schedule``, clipping, decay."""
  return make_optimizer(
    config.optimizer,
    config.learning_rate,
    config.get("weight_decay", 0.0),
    config.get("clip_norm", 0.0),
    config.get("schedule", "constant"),
    config.num_steps,
  )


@dataclasses.dataclass
class Run:
  """One training run, fully built (and restored) before anything is written."""

  config: ml_collections.ConfigDict
  taskset: TaskSet
  model: Any
  data: DeviceData
  state: Any  # TrainState, placed on the mesh
  train_step: Callable
  mesh: Any  # jax.sharding.Mesh or None (single device)
  state_shardings: Any
  ckpt: Checkpointer | None
  start_step: int  # 0, or the restored checkpoint's step
  num_seeds: int = 1  # > 1: every state leaf has a leading seed axis
  # config.resample_data with num_seeds > 1: ``data`` has the seed axis too (seed s's own
  # task set) and ``train_step`` is ``(state, data) -> (state, metrics)``.
  per_seed_data: bool = False
  # The streaming path (mtl_jax.data.streaming): ``data`` holds no rows (it sizes the
  # step), ``train_step`` is ``(state, batch) -> (state, metrics)`` and the batches come
  # from ``stream``; None on the on-device path.
  stream: streaming.Stream | None = None


def require_device_data(run: Run, what: str) -> None:
  """ValueError when ``run`` streams its data (``what`` samples from ``run.data`` itself)."""
  if run.stream is not None:
    raise ValueError(
      f"{what} needs the task data on the device, but this run streams it from the host "
      f"(config.data_path = {run.config.get('data_path', 'auto')!r}, padded arrays over "
      "config.device_data_budget_mb); set --config.data_path=device or raise the budget"
    )


def num_seeds(config: ml_collections.ConfigDict) -> int:
  """``config.num_seeds`` (1 when absent)."""
  return int(config.get("num_seeds", 1) or 1)


def _init_state(config, taskset: TaskSet, model, init_state: Callable):
  """The initial state; with N seeds, N of them stacked (seed s uses ``config.seed + s``)."""

  def init(seed, x):
    rng = jax.random.PRNGKey(seed)
    return init_state(jax.random.fold_in(rng, 1), model.init(jax.random.fold_in(rng, 0), x))

  # Jitted: one compile instead of one per eager op. It runs once, so on CPU it skips
  # LLVM's optimisations (the PRNG makes it slow to compile: ~3x faster start-up).
  options = {"xla_backend_optimization_level": 0} if jax.default_backend() == "cpu" else None
  x = jnp.asarray(taskset.x_train[0, :2])
  n = num_seeds(config)
  if n == 1:
    return jax.jit(lambda x: init(config.seed, x), compiler_options=options)(x)
  seeds = config.seed + jnp.arange(n)
  return jax.jit(jax.vmap(init, in_axes=(0, None)), compiler_options=options)(seeds, x)


def _restore(ckpt: Checkpointer, state, config) -> tuple[Any, int]:
  restored = ckpt.restore(state, config.to_dict())
  if restored is None:
    return state, 0
  start = int(np.max(jax.device_get(restored.step)))  # one step for every seed
  if start > config.num_steps:
    ckpt.close()
    raise CheckpointError(
      f"the latest checkpoint in {ckpt.directory} is at step {start}, past "
      f"num_steps = {config.num_steps}; raise --config.num_steps, or use a fresh "
      "--workdir to train a shorter run"
    )
  return restored, start


def _batch_put(mesh, seeds: int) -> Callable[[TaskBatch], TaskBatch]:
  """Places streamed batches ``[(S,) L, K, B, ...]`` as the on-device path lays them out:
  the example axis B over ``"data"`` (one seed), or the seed axis as the state's."""
  if mesh is None:
    return jax.device_put
  if seeds > 1:
    return lambda batch: sharding.put(batch, sharding.seed_sharding(mesh, batch, seeds))
  ex = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, None, "data"))
  rep = sharding.replicated(mesh)
  specs = lambda b: TaskBatch(task=rep, **{f: ex for f in b._fields if f != "task"})
  return lambda batch: sharding.put(batch, specs(batch))


def _data_and_step(config, taskset: TaskSet, model, mesh, per_seed: bool):
  """``(data, stream, init_state, train_step)``: the on-device data (``stream`` None) or,
  on the streaming path, the row-free data and the :class:`~streaming.Stream` of batches."""
  seeds = num_seeds(config)
  tasksets = seed_tasksets(config, taskset) if per_seed else [taskset]
  stream = None
  if streaming.choose_path(config, tasksets) == "stream":
    host = [DeviceData.from_taskset(ts, np.asarray) for ts in tasksets]
    data = streaming.row_free(host[0])  # shapes and loss kinds for the step
    sources = host if per_seed else host * seeds
    k = config.tasks_per_batch or taskset.num_tasks
    budget = streaming.budget_bytes(config)
    put = _batch_put(mesh, seeds)
    stream = streaming.Stream(sources, k, config.batch_size, taskset.shared_inputs, budget, put)
  else:
    data = DeviceData.from_taskset(taskset)  # seed 0's: shapes and loss kinds for the step
  init_state, train_step = make_train_step(
    model,
    data,
    build_optimizer(config),
    config.method,
    component_kwargs(config, "method"),
    tasks_per_batch=config.tasks_per_batch or taskset.num_tasks,
    batch_size=config.batch_size,
    shared_inputs=taskset.shared_inputs,
    # With seeds, the seed axis is what is split over the devices (see below).
    constrain_batch=None if mesh is None or seeds > 1 else sharding.batch_constraint(mesh),
    data_argument=per_seed and stream is None,
    batch_argument=stream is not None,
    missing_labels=any(ts.has_missing_labels for ts in tasksets),
  )
  if per_seed and stream is None:
    data = _stacked_data(tasksets)
  return data, stream, init_state, train_step


def prepare_run(
  config: ml_collections.ConfigDict,
  taskset: TaskSet,
  model_name: str | None = None,
  method: str | None = None,
  *,
  ckpt_dir: str | None = None,
  mesh=None,
) -> Run:
  """Builds the run ``config`` describes and restores its latest checkpoint, if any.

  ``model_name`` / ``method`` override ``config.model`` / ``config.method`` (a model
  other than ``config.model`` is built as :func:`mtl_jax.configs.baseline_config` would).
  ``taskset`` is :func:`build_taskset` of ``config``; with ``config.resample_data`` and
  N > 1 seeds it is seed 0's data and :func:`seed_tasksets` draws the others.

  Raises:
    ValueError / :class:`CheckpointError` (a corrupt or incompatible checkpoint) before
    any file is written.
  """
  if model_name is not None and model_name != config.model:
    config = _as_baseline(config, model_name)
  if method is not None and method != config.method:
    config = ml_collections.ConfigDict(config.to_dict())
    config.method = method
  seeds = num_seeds(config)
  per_seed = resample_data(config) and seeds > 1
  model = build_model(config, taskset)
  data, stream, init_state, train_step = _data_and_step(config, taskset, model, mesh, per_seed)
  state = _init_state(config, taskset, model, init_state)
  shardings = None
  if mesh is not None:
    shardings = (
      sharding.state_sharding(mesh, state, taskset.num_tasks)
      if seeds == 1
      else sharding.seed_sharding(mesh, state, seeds)
    )
    state = sharding.put(state, shardings)
    data_sh = (
      sharding.seed_sharding(mesh, data, seeds)
      if per_seed and stream is None
      else jax.tree.map(lambda _: sharding.replicated(mesh), data)
    )
    data = sharding.put(data, data_sh)
  ckpt = Checkpointer(ckpt_dir) if ckpt_dir else None
  start = 0
  if ckpt is not None:
    state, start = _restore(ckpt, state, config)
  return Run(
    config,
    taskset,
    model,
    data,
    state,
    train_step,
    mesh,
    shardings,
    ckpt,
    start,
    seeds,
    per_seed,
    stream,
  )
