"""Gradient aggregators: per-task gradients stacked on a leading task axis -> one update.

Contract (``docs/design.md``, "Contracts: gradient aggregators")::

    agg = mtl_jax.aggregators.get("pcgrad", **hyperparams)
    state = agg.init(params)
    update, state = agg.update(per_task_grads, state, params, **extra)

``per_task_grads`` is any pytree whose leaves carry a leading task axis T (a plain
``[T, P]`` array is a valid pytree); ``update`` has the same structure without that axis
and the sign of a gradient (feed it to an optax optimiser as if it were the gradient).
Every aggregator works with no ``extra`` keyword; optional extras (``rng``, ``losses``,
...) are documented per method.

Each method lives in its own module named after it and registers itself with
:func:`register`; modules in this package are discovered and imported automatically.
"""

import importlib
import pkgutil

from mtl_jax.aggregators._base import (
  Aggregator,
  chain,
  get,
  implied_weights,
  names,
  normalized,
  register,
)

for _m in pkgutil.iter_modules(__path__):
  if not _m.name.startswith("_"):
    importlib.import_module(f"{__name__}.{_m.name}")

__all__ = [
  "Aggregator",
  "chain",
  "get",
  "implied_weights",
  "names",
  "normalized",
  "register",
]
