"""Offline task sets by name (no downloads): ``get_taskset(name, **kwargs)``.

The TFDS task sets (:data:`tfds_sets.TFDS_TASKSETS`, :func:`uses_data_dir`) read a
prepared dataset from their ``data_dir`` argument and fail at once, naming the command that
prepares it, when it is not there (docs/data.md).
"""

from collections.abc import Callable

from mtl_jax.data.digits import digit_attributes, rotated_digits
from mtl_jax.data.mmoe_paper import mmoe_paper
from mtl_jax.data.synthetic import mmoe_regression, sinusoid_regression
from mtl_jax.data.tfds_sets import TFDS_TASKSETS
from mtl_jax.tasks import TaskSet

TASKSETS: dict[str, Callable[..., TaskSet]] = {
  "mmoe_regression": mmoe_regression,
  "mmoe_paper": mmoe_paper,
  "sinusoid": sinusoid_regression,
  "rotated_digits": rotated_digits,
  "digit_attributes": digit_attributes,
  **{name: builder for name, (builder, _) in TFDS_TASKSETS.items()},
}


def names() -> list[str]:
  return sorted(TASKSETS)


def get_taskset(name: str, **kwargs) -> TaskSet:
  """Builds the task set registered as ``name``; unknown names list the valid ones."""
  if name not in TASKSETS:
    raise ValueError(f"unknown task set {name!r}; valid names: {', '.join(names())}")
  try:
    return TASKSETS[name](**kwargs)
  except TypeError as e:
    raise ValueError(f"task set {name!r}: bad arguments {sorted(kwargs)}: {e}") from e


def uses_data_dir(name: str) -> bool:
  """True for task sets read from a prepared TFDS dataset in ``data_dir``."""
  return name in TFDS_TASKSETS
