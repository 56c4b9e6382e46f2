"""The fine-tuning practices as optax: per-layer labels, layer-wise rates, freezing, unfreezing.

Conventions:

* A *level* is a layer counted from the top: level 0 is the task head, level 1 the last
  trunk layer, ..., level L the first trunk layer (``layer_0`` of an L-layer
  :class:`~mtl_jax.models.layer_split.LayerSplitNet`). Other architectures have two levels:
  everything task-specific is level 0 ("head"), everything shared level 1 ("trunk").
* Level d trains with rate ``learning_rate * layer_decay ** d`` (layer-wise decay: earlier
  layers move less; ``layer_decay = 1`` is one rate for all).
* ``unfreeze_at[d]`` is the step from which level d trains (:func:`schedule`): 0 from the
  start, ``d * unfreeze_every`` for gradual unfreezing (the head first, one more level
  every N steps), :data:`NEVER` for a level frozen all run. These are *traced* values
  (:class:`Hparams`), so one compiled step serves every stage of a schedule and every
  grid point of a search: no recompilation.
* Levels frozen *by configuration* (the ``freeze_layers`` bottom ones; all trunk levels for
  a linear probe) are static: they get the label :data:`FROZEN`, whose transform is
  ``optax.set_to_zero()`` inside ``optax.partition``, so they keep **no optimiser state**,
  and the forward pass wraps them in ``stop_gradient`` (:func:`effective_params`), so XLA
  computes **no gradient** for them. Levels frozen by the schedule keep a (zero) Adam state
  that :func:`gated` leaves untouched until they open, so Adam's bias correction starts
  with the level, and their gradient is zeroed by ``where(open, p, stop_gradient(p))``.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mtl_jax.models.layer_split import LayerSplitNet

FROZEN = "frozen"
NEVER = 2**30  # an unfreeze step no run reaches
BASE_OPTIMIZERS = ("adam", "sgd")


class Hparams(NamedTuple):
  """Per-run fine-tuning hyperparameters (arrays: vmappable, traced, never recompiled)."""

  learning_rate: jax.Array  # scalar: the rate of the head (level 0)
  layer_decay: jax.Array  # scalar: level d trains at learning_rate * layer_decay ** d
  unfreeze_at: jax.Array  # [num_levels] int32: first step at which level d trains


def num_levels(model) -> int:
  """Levels of ``model``: trunk layers + head for layer-split nets, else 2 (trunk, head)."""
  if isinstance(model, LayerSplitNet):
    return len(model.layers) + 1
  return 2


def levels(model, params) -> Any:
  """The level (0 = head, counted from the top) of every leaf of ``params``."""
  top = num_levels(model) - 1

  def level(path, _):
    keys = [getattr(k, "key", getattr(k, "name", None)) for k in path]
    if isinstance(model, LayerSplitNet):
      for k in keys:
        if isinstance(k, str) and k.startswith("layer_"):
          return top - int(k.removeprefix("layer_"))
      return 0  # the head
    return 0 if keys[0] == "tasks" else 1

  return jax.tree_util.tree_map_with_path(level, params)


def schedule(n_levels: int, freeze_layers: int = 0, unfreeze_every: int = 0) -> np.ndarray:
  """``unfreeze_at [n_levels]``: the step from which each level (0 = head) trains.

  The bottom ``freeze_layers`` trunk levels never train; with ``unfreeze_every = N > 0``
  level d opens at step ``d * N`` (the head at 0, then one more level every N steps).
  """
  if not 0 <= freeze_layers <= n_levels - 1:
    raise ValueError(
      f"freeze_layers must be in [0, {n_levels - 1}] (trunk layers), got {freeze_layers}"
    )
  if unfreeze_every < 0:
    raise ValueError(
      f"unfreeze_every must be >= 0 (0: no gradual unfreezing), got {unfreeze_every}"
    )
  d = np.arange(n_levels)
  at = d * unfreeze_every
  at[d >= n_levels - freeze_layers] = NEVER
  return at.astype(np.int32)


def hparams(
  learning_rate: float, layer_decay: float, n_levels: int, freeze_layers=0, unfreeze_every=0
) -> Hparams:
  """One run's :class:`Hparams` from plain numbers."""
  return Hparams(
    jnp.float32(learning_rate),
    jnp.float32(layer_decay),
    jnp.asarray(schedule(n_levels, freeze_layers, unfreeze_every)),
  )


def level_rates(hp: Hparams, n_levels: int) -> jax.Array:
  """``[n_levels]``: ``learning_rate * layer_decay ** d`` (rate × decay^(depth from the top))."""
  return hp.learning_rate * hp.layer_decay ** jnp.arange(n_levels, dtype=jnp.float32)


def labels(level_tree: Any, frozen_levels: frozenset) -> Any:
  """``optax.partition`` labels: :data:`FROZEN` for statically frozen levels, else ``level_d``."""
  return jax.tree.map(lambda d: FROZEN if d in frozen_levels else f"level_{d}", level_tree)


class GatedState(NamedTuple):
  count: jax.Array  # steps seen (open or not)
  inner: Any


def gated(inner: optax.GradientTransformation, start: jax.Array) -> optax.GradientTransformation:
  """``inner`` from step ``start`` on (a traced scalar); before it, zero updates and the
  inner state (e.g. Adam's moments and count) left as it was initialised."""

  def init(params):
    return GatedState(jnp.zeros((), jnp.int32), inner.init(params))

  def update(updates, state, params=None):
    is_open = state.count >= start
    new, inner_state = inner.update(updates, state.inner, params)
    new = jax.tree.map(lambda u: jnp.where(is_open, u, jnp.zeros_like(u)), new)
    keep = jax.tree.map(lambda a, b: jnp.where(is_open, a, b), inner_state, state.inner)
    return new, GatedState(state.count + 1, keep)

  return optax.GradientTransformation(init, update)


def _base(name: str) -> optax.GradientTransformation:
  if name == "adam":
    return optax.scale_by_adam()
  if name == "sgd":  # plain SGD (no momentum): the update is exactly -rate * gradient
    return optax.identity()
  raise ValueError(f"unknown fine-tuning optimizer {name!r}; valid: {', '.join(BASE_OPTIMIZERS)}")


def optimizer(label_tree: Any, hp: Hparams, n_levels: int, base: str = "adam"):
  """``optax.partition`` over the levels: level d is ``gated(base → scale(-rate_d),
  unfreeze_at[d])``; :data:`FROZEN` leaves get ``optax.set_to_zero()`` (no state).

  Built inside the traced function from the run's (traced) ``hp``; its state structure
  depends only on ``label_tree``.
  """
  rates = level_rates(hp, n_levels)
  used = set(jax.tree.leaves(label_tree))
  transforms = {FROZEN: optax.set_to_zero()} if FROZEN in used else {}
  for d in range(n_levels):
    if f"level_{d}" in used:
      inner = optax.chain(_base(base), optax.scale(-rates[d]))
      transforms[f"level_{d}"] = gated(inner, hp.unfreeze_at[d])
  return optax.partition(transforms, label_tree)


def effective_params(params, level_tree, frozen_levels: frozenset, hp: Hparams, step):
  """The parameters the forward pass sees: statically frozen levels under
  ``stop_gradient`` (no gradient is computed for them) and levels not yet open by the
  schedule as ``where(open, p, stop_gradient(p))`` (their gradient is zero)."""

  def f(p, d):
    if d in frozen_levels:
      return jax.lax.stop_gradient(p)
    return jnp.where(step >= hp.unfreeze_at[d], p, jax.lax.stop_gradient(p))

  return jax.tree.map(f, params, level_tree)
