"""Multi-task models and their registry: ``get(name, num_tasks=..., output_size=..., **kwargs)``.

Architectures register a builder with :func:`register`; every builder accepts
``num_tasks``, ``output_size``, ``input_shape`` and its own keyword arguments (whose
defaults, in the builder's signature, are the model's defaults) and returns a
:class:`MultiTaskModel`. This module also registers the layer-split baselines
``hard_sharing`` and ``independent`` (:class:`LayerSplitNet`).
"""

from mtl_jax.models.base import MultiTaskModel, gather_tasks
from mtl_jax.models.layer_split import LayerSplitNet
from mtl_jax.models.layers import TRUNKS, count_params
from mtl_jax.registry import Registry

_REGISTRY = Registry("model", "model_kwargs")
register = _REGISTRY.register
names = _REGISTRY.names
accepted_kwargs = _REGISTRY.accepted_kwargs

# What the library knows about the task set and passes to every builder that takes it.
_FROM_TASKSET = ("num_tasks", "output_size", "input_shape", "descriptors")


# Backward-compatible name of the layer-split implementation.
MultiTaskNet = LayerSplitNet


def get(name: str, **kwargs) -> MultiTaskModel:
  """Builds the model registered as ``name``; unknown names or kwargs are clear errors."""
  accepted = accepted_kwargs(name)
  for key in _FROM_TASKSET:
    if key in kwargs and key not in accepted:
      kwargs.pop(key)
  return _REGISTRY.get(name, **kwargs)


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
  return LayerSplitNet(
    _trunk(trunk, width, depth), num_tasks, output_size, num_shared=num_shared, name="hard_sharing"
  )


@register("independent")
def independent(*, num_tasks, output_size, input_shape=None, trunk="mlp", width=64, depth=2):
  """Share nothing: one whole network per task, stacked on the task axis."""
  del input_shape
  return LayerSplitNet(
    _trunk(trunk, width, depth), num_tasks, output_size, num_shared=0, name="independent"
  )


__all__ = [
  "LayerSplitNet",
  "MultiTaskModel",
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
  dselect_k,
  mmoe,
  omoe,
  patch_conv,
  ple,
  soft_sharing,
  split,
)
