"""What every launcher shares: steering flags, config-field checks, one-line errors.

* ``--config.model=NAME``, ``--config.method=NAME`` and ``--config.taskset=NAME`` are
  folded into the config file's argument (``FILE:model=NAME``) before flags are parsed, so
  the new component comes with its own hyperparameters (then overridable as
  ``--config.<kind>_kwargs.KEY=VALUE``) and the previous one's are dropped with a notice.
* Every ``--config.FIELD=VALUE`` must name a field of the resolved config; a typo is an
  error naming the closest fields.
* Bad input prints one line ``error: <message>`` to stderr and exits 2; ``--debug`` shows
  the traceback instead.
"""

import contextlib
import difflib
import importlib.util
import io
import os
import sys

import ml_collections
from absl import flags

flags.DEFINE_bool("debug", False, "Show tracebacks instead of one-line errors.")
FLAGS = flags.FLAGS

DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "configs", "default.py")
STEERING = ("model", "method", "taskset")
EXIT_BAD_INPUT = 2


class UsageError(ValueError):
  """A command line that cannot run; the message says what to change."""


def _split_flag(arg: str) -> tuple[str, str | None]:
  name, eq, value = arg.partition("=")
  return name, (value if eq else None)


def fold_steering(argv: list[str], default: str = DEFAULT_CONFIG) -> list[str]:
  """Moves ``--config.{model,method,taskset}=NAME`` into the ``--config=FILE:ARGS`` flag."""
  out, chosen, config_at = [argv[0]], [], None
  for arg in argv[1:]:
    name, value = _split_flag(arg)
    if name in (f"--config.{k}" for k in STEERING):
      if value is None:
        raise UsageError(f"{name} needs a value: {name}=NAME")
      chosen.append(f"{name.removeprefix('--config.')}={value}")
      continue
    if name == "--config" and value is not None:
      config_at = len(out)
    out.append(arg)
  if config_at is not None:  # absl wants --config before any --config.FIELD
    out.insert(1, out.pop(config_at))
  if not chosen:
    return out
  if config_at is None:
    out.insert(1, f"--config={default}")
  path, _, arg = _split_flag(out[1])[1].partition(":")
  out[1] = f"--config={path}:" + ",".join([a for a in arg.split(",") if a] + chosen)
  return out


def load_config(spec: str) -> ml_collections.ConfigDict:
  """Runs ``get_config(arg)`` of ``FILE[:arg]`` (as ``--config`` would)."""
  path, _, arg = spec.partition(":")
  if not os.path.isfile(path):
    raise UsageError(f"config file {path!r} not found")
  module_spec = importlib.util.spec_from_file_location("_mtl_jax_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def field_paths(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
  """Every field of ``config`` as a dotted path (nested ConfigDicts included)."""
  out = []
  for key, value in config.items():
    out.append(prefix + key)
    if isinstance(value, ml_collections.ConfigDict):
      out += field_paths(value, f"{prefix}{key}.")
  return out


def check_fields(argv: list[str], default: str = DEFAULT_CONFIG) -> None:
  """Every ``--config.FIELD`` names a field of the resolved config (else: closest ones)."""
  spec = default
  overrides = []
  for arg in argv[1:]:
    name, value = _split_flag(arg)
    if name == "--config" and value is not None:
      spec = value
    elif name.startswith("--config."):
      overrides.append(name.removeprefix("--config."))
  with contextlib.redirect_stderr(io.StringIO()):  # its notices are shown once, later
    config = load_config(spec)
  valid = field_paths(config)
  for field in overrides:
    if field not in valid:
      close = difflib.get_close_matches(field, valid, n=3, cutoff=0.5)
      hint = f"; did you mean {', '.join(close)}?" if close else ""
      raise UsageError(f"unknown config field {field!r}{hint}")


def prepare_argv(argv: list[str] | None = None) -> None:
  """Folds steering flags and checks config fields in ``sys.argv``, in place.

  Call it before ``config_flags.DEFINE_config_file`` (which reads ``sys.argv`` when it is
  defined), only when the script runs as ``__main__``.
  """
  argv = sys.argv if argv is None else argv
  try:
    argv[:] = fold_steering(argv)
    check_fields(argv)
  except Exception as e:  # a bad config file, argument or field
    if "--debug" in argv:
      raise
    fail(e)


def parse_flags(argv: list[str]) -> list[str]:
  """absl ``flags_parser``: parse errors (e.g. a value of the wrong type) are one line."""
  try:
    return FLAGS(argv)
  except Exception as e:
    if "--debug" in argv:
      raise
    fail(e)


def fail(e: BaseException, code: int = EXIT_BAD_INPUT):
  """Prints ``error: <message>`` (one line) to stderr and exits with ``code``."""
  message = " ".join(str(e).split()) or type(e).__name__
  if isinstance(e, (AttributeError, KeyError)):
    message = f"{type(e).__name__}: {message}"
  print(f"error: {message}", file=sys.stderr)
  sys.exit(code)
