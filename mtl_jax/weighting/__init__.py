"""Loss weightings: the per-task loss vector -> non-negative weights, with state.

Contract (``docs/design.md``, "Contracts: loss weightings")::

    w = mtl_jax.weighting.get("dwa", **hyperparams)
    state = w.init(num_tasks)
    weights_K, state = w.update(losses_K, state, task_ids=None, **extra)

``losses_K`` holds the losses of the K sampled tasks and ``task_ids`` (default
``arange(K)``, i.e. K = T) says which of the T tasks they are, so per-task state (sized T)
is read and written at those ids. The train step minimises Σ_k stop_gradient(w_k) L_k with
one backward pass. Optional extras (``rng``, ``grad_norms``, ``step``) are documented per
method; a weighting whose ``requires`` names an extra gets it from the train step.

Each method lives in its own module and registers itself with :func:`register`; modules in
this package are discovered and imported automatically.
"""

import importlib
import pkgutil

from mtl_jax.weighting._base import Weighting, get, names, register

for _m in pkgutil.iter_modules(__path__):
  if not _m.name.startswith("_"):
    importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["Weighting", "get", "names", "register"]
