"""Config-argument handling shared by every config file.

``--config=experiments/configs/NAME.py:ARGS`` where ARGS is a comma-separated list of
``smoke`` (shrink to a run of a few seconds) and ``key=value`` pairs for ``model``,
``method`` and ``taskset``. Choosing a component fills its ``*_kwargs`` with its own
hyperparameters and defaults (read from the builder's signature, where they are written
once), so each can then be overridden on the command line::

  --config=experiments/configs/default.py:method=cagrad --config.method_kwargs.c=0.2

The launcher turns ``--config.method=NAME`` (and ``model`` / ``taskset``) into the same
argument. A config file may pass a table of per-model settings (``variants``), applied
when that model is chosen (big_vision-style lookup tables instead of near-copy files).

A task set read from prepared TFDS data (``mtl_jax.data.uses_data_dir``) gets a top-level
``config.data_dir`` (TFDS's default unless the file sets one) that its
``taskset_kwargs.data_dir`` follows, so ``--config.data_dir=DIR`` points it at the data.
"""

import ml_collections

from mtl_jax import configs
from mtl_jax import data as data_lib

SMOKE = {"num_steps": 30, "log_every": 10, "batch_size": 16, "num_seeds": 2}


def _smoke(config: ml_collections.ConfigDict) -> None:
  config.num_steps = min(config.num_steps, SMOKE["num_steps"])
  config.log_every = SMOKE["log_every"]
  config.batch_size = min(config.batch_size, SMOKE["batch_size"])
  config.num_seeds = min(config.get("num_seeds", 1), SMOKE["num_seeds"])


def _apply_variant(config: ml_collections.ConfigDict, variant: dict) -> None:
  for field, values in variant.items():
    for key, value in values.items():
      config[field][key] = value


def apply_args(
  config: ml_collections.ConfigDict, arg: str | None, variants: dict | None = None
) -> ml_collections.ConfigDict:
  """Applies ``smoke`` and ``model=/method=/taskset=`` arguments; fills every ``*_kwargs``.

  Args:
    config: the config file's config.
    arg: the text after ``:`` in ``--config=FILE:ARG`` (None or "" for none).
    variants: ``{model name: {config field: {key: value}}}`` applied when the model is
      chosen, e.g. ``{"mmoe": {"model_kwargs": {"width": 32}}}``.
  """
  chosen = set()
  for a in [a for a in (arg or "").split(",") if a]:
    key, eq, value = a.partition("=")
    if a == "smoke":
      _smoke(config)
    elif eq and key in configs.KINDS and value:
      configs.switch(config, key, value)
      chosen.add(key)
      if key == "model" and value in (variants or {}):
        _apply_variant(config, variants[value])
    else:
      raise ValueError(
        f"unknown config argument {a!r}; valid: smoke, model=NAME, method=NAME, taskset=NAME"
      )
  for kind in configs.KINDS:
    if kind not in chosen:  # the file's own components: add their defaults, keep its values
      configs.switch(config, kind, config[kind])
  _link_data_dir(config)
  return config


def _link_data_dir(config: ml_collections.ConfigDict) -> None:
  """``taskset_kwargs.data_dir`` follows ``config.data_dir`` (a FieldReference)."""
  if not data_lib.uses_data_dir(config.taskset):
    return
  if "data_dir" not in config or not config.data_dir:
    config.data_dir = data_lib.tfds_sets.default_data_dir()
  config.taskset_kwargs.data_dir = config.get_ref("data_dir")


def tfds_config(
  arg: str | None,
  taskset: str,
  smoke_data: dict,
  *,
  depth: int = 3,
  smoke_fields: dict | None = None,
  **fields,
) -> ml_collections.ConfigDict:
  """The default job on a TFDS task set with a ``patch_conv`` trunk (width 32, ``depth``
  layers; ``:smoke``: width 8, 2 layers and ``smoke_data`` as the task set's kwargs).

  ``fields`` set top-level config values (``num_steps``, ``num_seeds``, ...);
  ``smoke_fields`` override them under ``:smoke``. ``config.data_dir`` is linked to the
  task set by :func:`apply_args`.
  """
  from experiments.configs import default

  config = default.get_config()
  config.taskset = taskset
  smoke = "smoke" in (arg or "").split(",")
  config.taskset_kwargs = ml_collections.ConfigDict(smoke_data if smoke else {})
  width, depth = (8, 2) if smoke else (32, depth)
  config.model_kwargs = ml_collections.ConfigDict(
    {"trunk": "patch_conv", "width": width, "depth": depth}
  )
  fields = dict(fields, **(smoke_fields or {})) if smoke else fields
  for key, value in fields.items():
    config[key] = value
  return apply_args(config, arg)
