"""Config-argument handling shared by every config file.

``--config=experiments/configs/NAME.py:ARGS`` where ARGS is a comma-separated list of
``smoke`` (shrink to a run of a few seconds) and ``key=value`` pairs for ``method``,
``model`` and ``taskset``. Choosing a name through the argument also fills
``method_kwargs`` / ``model_kwargs`` / ``taskset_kwargs`` with that component's
hyperparameters and defaults, so each can then be overridden on the command line::

  --config=experiments/configs/default.py:method=cagrad --config.method_kwargs.c=0.2

(``ml_collections`` only overrides fields that exist; naming the component in the
argument is what creates them.)
"""

import inspect
import types
import typing

import ml_collections
from ml_collections import config_dict

# Filled in by the library when it builds a model, never by the user.
_MODEL_ONLY = {"num_tasks", "output_size", "input_shape", "descriptors"}


def signature_defaults(fn, skip=frozenset()) -> dict:
  """Keyword arguments of ``fn`` that have config-friendly defaults."""
  out = {}
  for name, p in inspect.signature(fn).parameters.items():
    if name in skip or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
      continue
    if p.default is inspect.Parameter.empty:
      continue
    v = p.default
    if isinstance(v, list):
      v = tuple(v)
    if v is None:
      # An optional field: a typed placeholder keeps it overridable from the command line.
      t = _optional_type(p.annotation)
      if t is not None:
        out[name] = config_dict.placeholder(t)
    elif isinstance(v, (bool, int, float, str, tuple)):
      out[name] = v
  return out


def _optional_type(annotation):
  if isinstance(annotation, str):
    for t in (int, float, str, bool):
      if t.__name__ in annotation:
        return t
    return None
  if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
    for t in typing.get_args(annotation):
      if t in (int, float, str, bool):
        return t
  return None


def _fill(config, field, fn, keep=(), skip=frozenset()):
  defaults = signature_defaults(fn, skip)
  old = dict(config[field]) if field in config else {}
  merged = {k: v for k, v in defaults.items()}
  merged.update({k: v for k, v in old.items() if k in keep or k in defaults})
  config[field] = ml_collections.ConfigDict(merged)


def fill_kwargs(config: ml_collections.ConfigDict, which=("model", "method", "taskset")):
  """Adds each named component's hyperparameters (with defaults) to its ``*_kwargs``."""
  from mtl_jax import aggregators, data, models, weighting

  if "taskset" in which and config.taskset in data.TASKSETS:
    _fill(config, "taskset_kwargs", data.TASKSETS[config.taskset])
  if "model" in which and config.model in models.names():
    _fill(config, "model_kwargs", models._REGISTRY.factory(config.model), skip=_MODEL_ONLY)
  if "method" in which:
    if config.method in weighting.names():
      _fill(config, "method_kwargs", weighting._base._REGISTRY.factory(config.method))
    elif config.method in aggregators.names():
      _fill(config, "method_kwargs", aggregators._base._REGISTRY.factory(config.method))
  return config


def apply_args(config: ml_collections.ConfigDict, arg: str | None):
  """Applies ``smoke`` and ``method=/model=/taskset=`` config arguments."""
  chosen = []
  for a in [a for a in (arg or "").split(",") if a]:
    if a == "smoke":
      config.num_steps = min(config.num_steps, 30)
      config.log_every = 10
      config.batch_size = min(config.batch_size, 16)
    elif "=" in a and a.split("=", 1)[0] in ("method", "model", "taskset"):
      key, value = a.split("=", 1)
      config[key] = value
      chosen.append(key)
    else:
      raise ValueError(
        f"unknown config argument {a!r}; valid: smoke, method=NAME, model=NAME, taskset=NAME"
      )
  return fill_kwargs(config)
