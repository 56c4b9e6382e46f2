"""Every check a config gets before any work: each error names the offending field.

:func:`validate_config` runs twice: without the task set (names and scalar settings, so
a typo fails before data is loaded) and with it (K vs T, the methods' hyperparameters for
T tasks, the mesh against the devices and the batch). Errors are ``ValueError`` with one
line a person can act on; unknown names list the valid ones.
"""

import math

import ml_collections

from mtl_jax import build, methods, models, sharding
from mtl_jax import data as data_lib
from mtl_jax.configs import baseline_config, component_kwargs
from mtl_jax.data import streaming
from mtl_jax.tasks import TaskSet

REQUIRED = ("seed", "num_steps", "model", "method")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine")


def _check_names(config: ml_collections.ConfigDict) -> None:
  for field in REQUIRED:
    if field not in config:
      raise ValueError(f"config is missing the field {field!r}")
  valid = ", ".join(models.names())
  if config.model not in models.names():
    raise ValueError(f"unknown model {config.model!r}; valid names: {valid}")
  if config.get("baseline") and config.baseline not in models.names():
    raise ValueError(f"unknown baseline model {config.baseline!r}; valid names: {valid}")
  methods.factory(config.method)
  if config.get("baseline"):
    methods.factory(config.get("baseline_method", "equal"))
  if config.taskset not in data_lib.names():
    raise ValueError(
      f"unknown task set {config.taskset!r}; valid names: {', '.join(data_lib.names())}"
    )
  if config.get("optimizer", "adam") not in OPTIMIZERS:
    raise ValueError(f"unknown optimizer {config.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
  if config.get("schedule", "constant") not in SCHEDULES:
    raise ValueError(f"unknown schedule {config.schedule!r}; valid: {', '.join(SCHEDULES)}")


def _check_number(config, field: str, low: float, *, strict: bool = False, default=None):
  value = config.get(field, default)
  if value is None:
    return
  bad = not isinstance(value, (int, float)) or not math.isfinite(value)
  bad = bad or (value <= low if strict else value < low)
  if bad:
    bound = f"> {low}" if strict else f">= {low}"
    raise ValueError(f"{field} must be a finite number {bound}, got {value!r}")


def _check_seeds(config: ml_collections.ConfigDict) -> None:
  seeds = config.get("num_seeds", 1)
  if seeds is not None and (not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1):
    raise ValueError(f"num_seeds must be an integer >= 1, got {seeds!r}")
  resample = config.get("resample_data", False)
  if not isinstance(resample, bool):
    raise ValueError(f"resample_data must be True or False, got {resample!r}")
  if resample:
    build.data_seed(config)  # the task set's builder must take a seed


def _check_data_path(config: ml_collections.ConfigDict) -> None:
  path = config.get("data_path", "auto")
  if path not in streaming.PATHS:
    raise ValueError(
      f"data_path must be one of {', '.join(streaming.PATHS)} (auto: stream from the host "
      f"when the data exceed device_data_budget_mb), got {path!r}"
    )
  budget = config.get("device_data_budget_mb", streaming.DEFAULT_BUDGET_MB)
  bad = not isinstance(budget, (int, float)) or isinstance(budget, bool)
  if bad or not math.isfinite(budget) or budget <= 0:
    raise ValueError(
      f"device_data_budget_mb must be a finite number of MiB > 0 (the padded task data the "
      f"device may hold), got {budget!r}"
    )


def _check_numbers(config: ml_collections.ConfigDict) -> None:
  for field in ("num_steps", "batch_size", "log_every"):
    if config.get(field, 1) < 1:
      raise ValueError(f"{field} must be >= 1, got {config[field]}")
  if config.get("checkpoint_every", 0) < 0:
    raise ValueError(
      f"checkpoint_every must be >= 0 (0: only at the end), got {config.checkpoint_every}"
    )
  _check_number(config, "learning_rate", 0.0, strict=True, default=1e-3)
  _check_number(config, "weight_decay", 0.0, default=0.0)
  _check_number(config, "clip_norm", 0.0, default=0.0)
  if config.get("tasks_per_batch", 0) < 0:
    raise ValueError(f"tasks_per_batch must be >= 0 (0 means K = T), got {config.tasks_per_batch}")


def _check_with_taskset(config: ml_collections.ConfigDict, taskset: TaskSet) -> None:
  t = taskset.num_tasks
  k = config.get("tasks_per_batch", 0) or t
  if not 1 <= k <= t:
    raise ValueError(
      f"tasks_per_batch (K) = {k} but the task set has T = {t} tasks; "
      "need 1 <= K <= T (0 means K = T)"
    )
  if config.get("num_tasks") and config.num_tasks != t:
    raise ValueError(
      f"config.num_tasks = {config.num_tasks} but task set {taskset.name!r} has {t} tasks"
    )
  runs = [config] + ([baseline_config(config)] if config.get("baseline") else [])
  for run in runs:  # builds each method so bad hyperparameters fail up front
    kwargs = component_kwargs(run, "method")
    try:
      methods.get(run.method, num_tasks=t, tasks_per_batch=k, **kwargs)
    except TypeError as e:
      raise ValueError(f"method {run.method!r}: bad method_kwargs {sorted(kwargs)}: {e}") from e
  sharding.check_batch(sharding.make_mesh(config.get("mesh")), config.batch_size)


def validate_config(config: ml_collections.ConfigDict, taskset: TaskSet | None = None) -> None:
  """Raises ``ValueError`` naming the field for a config that cannot run.

  Without ``taskset``: names (model, baseline, methods, task set, optimizer, schedule) and
  scalar settings (steps, sizes, learning rate, weight decay, clipping, seeds, the data
  path and its budget; with
  ``resample_data`` a task set whose builder takes a seed). With it: K vs T,
  ``config.num_tasks`` vs the data, each method's hyperparameters for T tasks, and the
  mesh vs the visible devices and the batch size.
  """
  _check_names(config)
  _check_numbers(config)
  _check_seeds(config)
  _check_data_path(config)
  if taskset is not None:
    _check_with_taskset(config, taskset)
