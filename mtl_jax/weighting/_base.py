"""Registry and the ``Weighting`` container shared by all loss weightings."""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mtl_jax.registry import Registry


class Weighting(NamedTuple):
  """A pair of pure functions over the per-task loss vector.

  Attributes:
    init: ``init(num_tasks) -> state``.
    update: ``update(losses_K, state, task_ids=None, **extra) -> (weights_K, state)``.
    requires: names of the extras the train step must pass (e.g. ``"grad_norms"``:
      the norms ‖∇_W L_k‖ of each sampled task's *unweighted* loss w.r.t. the last
      shared layer W, shape [K]; ``"rng"``: a PRNG key).
  """

  init: Callable[[int], Any]
  update: Callable[..., tuple[jax.Array, Any]]
  requires: tuple[str, ...] = ()


_REGISTRY = Registry("weighting", "method_kwargs")
register = _REGISTRY.register
names = _REGISTRY.names


def get(name: str, **hyperparams: Any) -> Weighting:
  """Builds the weighting registered as ``name`` with the given hyperparameters."""
  return _REGISTRY.get(name, **hyperparams)


def resolve_ids(losses: jax.Array, task_ids: jax.Array | None) -> jax.Array:
  """``task_ids`` or, when None, ``arange(K)`` (all T tasks sampled)."""
  if task_ids is None:
    return jnp.arange(losses.shape[0])
  return task_ids
