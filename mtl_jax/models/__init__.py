"""Model registry: ``get(name, num_tasks=..., output_size=..., **kwargs)``.

Architectures register a builder with :func:`register`; every builder accepts
``num_tasks``, ``output_size``, ``input_shape`` and its own keyword arguments and
returns a :class:`MultiTaskNet` (or subclass).
"""

import inspect
from collections.abc import Callable

from mtl_jax.models.base import MultiTaskNet, gather_tasks
from mtl_jax.models.layers import TRUNKS, count_params

_REGISTRY: dict[str, Callable[..., MultiTaskNet]] = {}


def register(name: str):
  def deco(builder):
    if name in _REGISTRY:
      raise ValueError(f"model {name!r} registered twice")
    _REGISTRY[name] = builder
    return builder

  return deco


def names() -> list[str]:
  return sorted(_REGISTRY)


def get(name: str, **kwargs) -> MultiTaskNet:
  """Builds the model registered as ``name``; unknown names list the valid ones."""
  if name not in _REGISTRY:
    raise ValueError(f"unknown model {name!r}; valid names: {', '.join(names())}")
  builder = _REGISTRY[name]
  accepted = accepted_kwargs(name)
  # The library passes what it knows about the task set; a builder takes what it needs.
  for key in _FROM_TASKSET:
    if key in kwargs and key not in accepted:
      kwargs.pop(key)
  unknown = sorted(set(kwargs) - accepted)
  if unknown:
    raise ValueError(
      f"model {name!r}: unknown model_kwargs {unknown}; it accepts "
      f"{sorted(accepted - set(_FROM_TASKSET))}"
    )
  return builder(**kwargs)


_FROM_TASKSET = ("num_tasks", "output_size", "input_shape", "descriptors")


def accepted_kwargs(name: str) -> set[str]:
  """The keyword arguments the builder registered as ``name`` takes."""
  params = inspect.signature(_REGISTRY[name]).parameters
  return {k for k, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def _trunk(trunk: str, width: int, depth: int):
  if trunk not in TRUNKS:
    raise ValueError(f"unknown trunk {trunk!r}; valid: {sorted(TRUNKS)}")
  return TRUNKS[trunk](width=width, depth=depth)


@register("hard_sharing")
def hard_sharing(
  *, num_tasks, output_size, input_shape=None, trunk="mlp", width=64, depth=2, num_shared=None
):
  """Shared trunk θ^sh + one linear head per task (multi-head hard sharing).

  ``num_shared`` (default: all trunk layers) shares only the first k layers.
  """
  del input_shape
  return MultiTaskNet(
    _trunk(trunk, width, depth), num_tasks, output_size, num_shared=num_shared, name="hard_sharing"
  )


@register("independent")
def independent(*, num_tasks, output_size, input_shape=None, trunk="mlp", width=64, depth=2):
  """Share nothing: one whole network per task, stacked on the task axis."""
  del input_shape
  return MultiTaskNet(
    _trunk(trunk, width, depth), num_tasks, output_size, num_shared=0, name="independent"
  )


__all__ = [
  "MultiTaskNet",
  "accepted_kwargs",
  "count_params",
  "gather_tasks",
  "get",
  "names",
  "register",
]

# Architectures in their own files register themselves on import (after `register` exists).
from mtl_jax.models import (  # noqa: E402, F401, I001
  conditioning,
  cgc,
  cross_stitch,
  mmoe,
  ple,
  soft_sharing,
  split,
)
