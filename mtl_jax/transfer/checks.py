"""Every check of a transfer config before any work; each error names the field.

The base fields (task set, model, method, optimiser, steps, seeds) are the launcher's own
(:func:`mtl_jax.validation.validate_config`); the ``transfer``, ``practices`` and ``cv``
blocks are checked here (see ``experiments/configs/finetune_digits.py`` for what they mean).
"""

import math

from mtl_jax import validation
from mtl_jax.tasks import TaskSet
from mtl_jax.transfer import optim

HEADS = ("reinit", "keep")


def _number(block, path: str, field: str, *, low: float = 0.0, strict: bool = True):
  value = block[field]
  ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
  if not ok or (value <= low if strict else value < low):
    bound = f"> {low:g}" if strict else f">= {low:g}"
    raise ValueError(f"{path}.{field} must be a finite number {bound}, got {value!r}")


def _integer(block, path: str, field: str, low: int):
  value = block[field]
  if isinstance(value, bool) or not isinstance(value, int) or value < low:
    raise ValueError(f"{path}.{field} must be an integer >= {low}, got {value!r}")


def _grid(block, path: str, field: str, check):
  values = block[field]
  if isinstance(values, (int, float)):
    values = (values,)
  if not values:
    raise ValueError(f"{path}.{field} must list at least one value, got {values!r}")
  for v in values:
    check({field: v}, path, field)


def _check_transfer(t) -> None:
  for field in ("target_task", "stl_source_task"):
    if not isinstance(t[field], str) or not t[field]:
      raise ValueError(f"transfer.{field} must name a task of the task set, got {t[field]!r}")
  names = t.get("mtl_source_tasks", ()) or ()
  if isinstance(names, str) or not all(isinstance(n, str) and n for n in names):
    raise ValueError(f"transfer.mtl_source_tasks must be a tuple of task names, got {names!r}")
  for field in ("learning_rate", "scratch_learning_rate", "probe_learning_rate", "layer_decay"):
    _number(t, "transfer", field)
  for field, low in (("num_steps", 1), ("batch_size", 1), ("freeze_layers", 0)):
    _integer(t, "transfer", field, low)
  _integer(t, "transfer", "unfreeze_every", 0)
  _integer(t, "transfer", "source_row", 0)
  if t.head not in HEADS:
    raise ValueError(f"transfer.head must be one of {', '.join(HEADS)}, got {t.head!r}")
  if t.optimizer not in optim.BASE_OPTIMIZERS:
    raise ValueError(
      f"transfer.optimizer must be one of {', '.join(optim.BASE_OPTIMIZERS)}, got {t.optimizer!r}"
    )
  _grid(t, "transfer", "n_per_class", lambda b, p, f: _integer(b, p, f, 0))


def validate(config, full: TaskSet | None = None) -> None:
  """Raises ``ValueError`` naming the field for a transfer config that cannot run."""
  for block in ("transfer", "practices", "cv"):
    if block not in config:
      raise ValueError(f"config is missing the {block!r} block (see finetune_digits.py)")
  validation.validate_config(config, full)
  if full is not None and full.has_missing_labels:
    raise ValueError(
      f"task set {full.name!r} has missing labels, which fine-tuning studies do not "
      "support (the per-class subsets and CV folds assume every label); use missing_rate=0"
    )
  _integer(config, "config", "num_seeds", 1)
  _check_transfer(config.transfer)
  p = config.practices
  _integer(p, "practices", "n_per_class", 0)
  _number(p, "practices", "layer_decay")
  _integer(p, "practices", "freeze_layers", 0)
  _integer(p, "practices", "unfreeze_every", 1)
  cv = config.cv
  _integer(cv, "cv", "folds", 2)
  _integer(cv, "cv", "n_per_class", 0)
  _grid(cv, "cv", "learning_rate", _number)
  _grid(cv, "cv", "layer_decay", _number)
  _grid(cv, "cv", "freeze_layers", lambda b, p, f: _integer(b, p, f, 0))


def check_levels(config, model) -> None:
  """Every ``freeze_layers`` fits the target model's trunk (L layers: 0..L)."""
  top = optim.num_levels(model) - 1
  values = [
    ("transfer.freeze_layers", config.transfer.freeze_layers),
    ("practices.freeze_layers", config.practices.freeze_layers),
  ] + [("cv.freeze_layers", k) for k in _as_tuple(config.cv.freeze_layers)]
  for name, k in values:
    if k > top:
      raise ValueError(f"{name} = {k} but the source model's trunk has {top} layer(s)")


def _as_tuple(v):
  return tuple(v) if isinstance(v, (tuple, list)) else (v,)
