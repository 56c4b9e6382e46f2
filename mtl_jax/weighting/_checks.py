"""Hyperparameter checks and per-task state helpers shared by the weightings.

Checks run on Python values at factory time, so a bad config fails before anything is
traced, with a message naming the method, the field and what was expected.
"""

import math
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np


def number(
  method: str,
  field: str,
  value: Any,
  *,
  low: float | None = None,
  high: float | None = None,
  strict_low: bool = False,
) -> float:
  """``value`` as a finite float in [low, high] (or (low, high] with ``strict_low``).

  Raises:
    ValueError: naming ``method`` and ``field`` when the value is not such a number.
  """
  try:
    v = float(value)
  except (TypeError, ValueError):
    raise ValueError(f"{method}: {field} must be a number, got {value!r}") from None
  bad = not math.isfinite(v)
  if low is not None:
    bad = bad or (v <= low if strict_low else v < low)
  if high is not None:
    bad = bad or v > high
  if bad:
    bounds = []
    if low is not None:
      bounds.append(f"{'>' if strict_low else '>='} {low:g}")
    if high is not None:
      bounds.append(f"<= {high:g}")
    expected = " ".join(["a finite number", " and ".join(bounds)]).strip()
    raise ValueError(f"{method}: {field} must be {expected}, got {value!r}")
  return v


def choice(method: str, field: str, value: Any, options: Sequence[str]) -> str:
  """``value`` if it is one of ``options``, else ValueError listing them."""
  if value not in options:
    raise ValueError(f"{method}: {field} must be one of {list(options)}, got {value!r}")
  return value


def vector(method: str, field: str, values: Any) -> tuple[float, ...]:
  """A non-empty sequence of finite floats (no sign check), e.g. per-task weights."""
  try:
    flat = not isinstance(values, str | bytes) and np.ndim(values) == 1
  except ValueError:  # ragged nesting
    flat = False
  if not flat:
    raise ValueError(
      f"{method}: {field} must be a flat sequence of numbers (one per task), got {values!r}"
    )
  out = []
  for i, v in enumerate(values):
    try:
      f = float(v)
    except (TypeError, ValueError):
      raise ValueError(f"{method}: {field}[{i}] must be a number, got {v!r}") from None
    if not math.isfinite(f):
      raise ValueError(f"{method}: {field}[{i}] must be finite, got {v!r}")
    out.append(f)
  if not out:
    raise ValueError(f"{method}: {field} must hold at least one value, got an empty sequence")
  return tuple(out)


def num_tasks(method: str, value: Any) -> int:
  """The ``num_tasks`` passed to ``init``: a positive Python int (it sizes the state)."""
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise ValueError(f"{method}: num_tasks must be a positive int, got {value!r}")
  return value


def gather(tree: Any, ids: jax.Array) -> Any:
  """Rows ``ids`` of every leaf of a per-task state pytree (leading axis T)."""
  return jax.tree.map(lambda x: x[ids], tree)


def scatter(tree: Any, ids: jax.Array, rows: Any) -> Any:
  """``tree`` with rows ``ids`` replaced by ``rows`` (the other tasks left alone)."""
  return jax.tree.map(lambda x, r: x.at[ids].set(r.astype(x.dtype)), tree, rows)
