"""``static``: fixed per-task weights from the config, Σ_i w_i L_i."""

from collections.abc import Sequence

import jax.numpy as jnp
import optax

from mtl_jax.weighting import _checks
from mtl_jax.weighting._base import Weighting, register, resolve_ids


@register("static")
def static(weights: Sequence[float] | None = None) -> Weighting:
  """Manual task weights: the lecture's Σ_i w_i L_i with w chosen by hand.

  Conventions: the weights are used as given (no normalisation); a sampled task gets its
  own weight, gathered at ``task_ids``. With T = 1 the weight is ``weights[0]``. Stateless.

  Args:
    weights: one finite, non-negative number per task, not all zero. Required.

  Returns:
    A ``Weighting``. ``init(num_tasks)`` raises ValueError unless ``len(weights)`` equals
    ``num_tasks``.
  """
  if weights is None:
    raise ValueError("static: weights is required (one non-negative number per task)")
  values = _checks.vector("static", "weights", weights)
  negative = [i for i, v in enumerate(values) if v < 0]
  if negative:
    raise ValueError(
      f"static weights: must be >= 0, got {values[negative[0]]!r} at index {negative[0]}"
    )
  if not any(values):
    raise ValueError("static weights: all weights are zero, so no task would be trained")

  def init(num_tasks):
    num_tasks = _checks.num_tasks("static", num_tasks)
    if len(values) != num_tasks:
      raise ValueError(
        f"static weights: expected {num_tasks} values (one per task), got {len(values)}"
      )
    return optax.EmptyState()

  def update(losses, state, task_ids=None, **extra):
    del extra
    if task_ids is None and losses.shape[0] != len(values):
      # Shapes are static, so this fires at trace time, never inside the compiled step.
      raise ValueError(
        f"static weights: expected {losses.shape[0]} values (one per task), got "
        f"{len(values)}; pass task_ids when sampling fewer tasks"
      )
    ids = resolve_ids(losses, task_ids)
    return jnp.asarray(values, losses.dtype)[ids], state

  return Weighting(init, update)
