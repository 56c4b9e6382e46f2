"""Steering a config: components (model, method, task set) and their hyperparameters.

A config names three components (``config.model``, ``config.method``,
``config.taskset``); each one's hyperparameters live in ``config.<kind>_kwargs``. The
defaults are written once, in the signature of the component's registered builder, and
read from there by :func:`defaults` (and so by config files, the launcher and the docs).

* :func:`switch` changes a component: its ``*_kwargs`` become the new component's
  defaults, keeping the old values the new one also takes; the others are dropped with a
  one-line notice.
* :func:`component_kwargs` is what the library builds with; a name the builder does not
  take is an error there (a typo must not be silently ignored).
* :func:`baseline_config` turns a config into its baseline's: ``config.baseline`` with
  ``config.baseline_method``; it keeps the main model's kwargs that the baseline takes,
  then applies ``baseline_kwargs`` (the main method's kwargs are not passed on).
"""

import inspect
import sys
import types
import typing

import ml_collections
from ml_collections import config_dict

KINDS = ("model", "method", "taskset")
# Filled in by the library from the task set when it builds a model, never by the user.
FROM_TASKSET = frozenset({"num_tasks", "output_size", "input_shape", "descriptors"})


def factory(kind: str, name: str):
  """The registered builder of component ``name`` of ``kind`` (model, method, taskset)."""
  from mtl_jax import data, methods, models

  if kind == "model":
    return models._REGISTRY.factory(name)
  if kind == "method":
    return methods.factory(name)
  if kind == "taskset":
    if name not in data.TASKSETS:
      raise ValueError(f"unknown task set {name!r}; valid names: {', '.join(data.names())}")
    return data.TASKSETS[name]
  raise ValueError(f"unknown component kind {kind!r}; valid: {', '.join(KINDS)}")


# A method's num_tasks (K, rows per step) / max_tasks (T) are filled by mtl_jax.methods.get.
FROM_TRAIN_STEP = frozenset({"num_tasks", "max_tasks"})


def _skip(kind: str) -> frozenset:
  return {"model": FROM_TASKSET, "method": FROM_TRAIN_STEP}.get(kind, frozenset())


def accepted(kind: str, name: str) -> set[str]:
  """Keyword arguments the builder of ``name`` accepts from ``config.<kind>_kwargs``."""
  params = inspect.signature(factory(kind, name)).parameters
  ok = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
  return {k for k, p in params.items() if p.kind in ok} - _skip(kind)


def defaults(kind: str, name: str) -> dict:
  """The builder's keyword defaults that a config can hold (typed placeholders for None)."""
  out = {}
  for key, p in inspect.signature(factory(kind, name)).parameters.items():
    if key in _skip(kind) or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
      continue
    if p.default is inspect.Parameter.empty:
      continue
    v = tuple(p.default) if isinstance(p.default, list) else p.default
    if v is None:
      t = _optional_type(p.annotation)
      if t is not None:  # a typed placeholder keeps it overridable from the command line
        out[key] = config_dict.placeholder(t)
    elif isinstance(v, (bool, int, float, str, tuple)):
      out[key] = v
  return out


def _optional_type(annotation):
  if isinstance(annotation, str):
    for t in (tuple, int, float, str, bool):
      if t.__name__ in annotation:
        return t
    if "Sequence" in annotation:
      return tuple
    return None
  if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
    for t in typing.get_args(annotation):
      if t in (int, float, str, bool, tuple):
        return t
      if typing.get_origin(t) in (tuple, list) or str(t).startswith("collections.abc.Sequence"):
        return tuple
  return None


def _default_option(key: str, value) -> bool:
  from mtl_jax import methods

  return key in methods.AGGREGATOR_OPTIONS and value == methods.AGGREGATOR_OPTIONS[key]


def _notice(kind: str, name: str, dropped) -> None:
  print(
    f"note: {kind} {name!r} does not take {kind}_kwargs {', '.join(sorted(dropped))}: dropped",
    file=sys.stderr,
  )


def switch(config: ml_collections.ConfigDict, kind: str, name: str) -> ml_collections.ConfigDict:
  """Sets ``config.<kind> = name`` and rebuilds ``config.<kind>_kwargs`` (see module doc)."""
  field = f"{kind}_kwargs"
  factory(kind, name)  # unknown names are errors listing the valid ones
  new = defaults(kind, name)
  old = dict(config[field]) if field in config and config[field] is not None else {}
  # The same component keeps every value (a typo then fails when it is built).
  dropped = [] if config.get(kind) == name else [k for k in old if k not in accepted(kind, name)]
  # Options every aggregator takes, left at their defaults, go without a word.
  noted = [k for k in dropped if kind != "method" or not _default_option(k, old[k])]
  if noted:
    _notice(kind, name, noted)
  # An unset value (None) keeps the default's typed placeholder (overridable from flags).
  new.update({k: v for k, v in old.items() if k not in dropped and not (v is None and k in new)})
  config[kind] = name
  config[field] = ml_collections.ConfigDict(new)
  return config


def component_kwargs(config: ml_collections.ConfigDict, kind: str) -> dict:
  """``config.<kind>_kwargs`` as a dict (the builder rejects names it does not take)."""
  return dict(config.get(f"{kind}_kwargs") or {})


def baseline_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The baseline run's config: ``baseline`` / ``baseline_method`` with their own settings."""
  base = ml_collections.ConfigDict(config.to_dict())
  name = config.baseline
  keep = accepted("model", name)
  model_kwargs = {k: v for k, v in dict(config.get("model_kwargs") or {}).items() if k in keep}
  model_kwargs.update(dict(config.get("baseline_kwargs") or {}))
  base.model = name
  base.model_kwargs = ml_collections.ConfigDict(model_kwargs)
  base.method = config.get("baseline_method", "equal")
  base.method_kwargs = ml_collections.ConfigDict()
  base.baseline = ""
  return base
