"""Running a method on the tasks present in a batch (task sets with missing labels).

With missing labels (:mod:`mtl_jax.tasks`) a sampled task may have no labelled example in
a batch: its loss and gradients are exactly 0, and it must not distort the others. A zero
row is not neutral for most methods (MGDA's min-norm point over a hull that contains 0 is
0; ``mean`` and UPGrad divide by K; GLS takes the log of every loss), so every method is
run on the PRESENT rows only: :func:`run_on_present` moves them to the front (a stable
sort, so their order is kept), runs the method on the first m rows, with m the dynamic
number of present tasks, picked by ``lax.switch`` among K + 1 branches (each compiled at
its static size), and scatters the per-row result back (0 for absent rows). The result is
by construction the method run on the present subset: same rows in the same order, same
task ids (stateful methods keyed by task id update only present tasks' state), same PRNG
key. With no task present the update is 0 and the state unchanged.

The cost is compile time (the method is traced K + 1 times) and a gather of the per-task
rows; it is paid only when the task set has missing labels.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

# Extras whose leading axis is the K sampled tasks (moved and cut with the rows).
PER_TASK_EXTRAS = ("losses", "task_ids", "grad_norms", "rep_grads", "shared_grads")


def present_first(present: jax.Array) -> jax.Array:
  """``[K]`` permutation putting the present rows first, in batch order (a stable sort):
  the order in which :func:`run_on_present` hands rows to its ``fn``."""
  return jnp.argsort(~present, stable=True)


def run_on_present(
  fn: Callable[[Any], tuple[Any, jax.Array]],
  present: jax.Array,
  rows: Any,
  if_none: Callable[[Any], Any],
) -> tuple[Any, jax.Array]:
  """``fn`` on the present rows of ``rows`` only.

  Args:
    fn: ``fn(rows_m) -> (out, per_row [m])``, called with every leaf of ``rows`` cut to
      the m present rows (in batch order); ``out`` must have the same structure and
      shapes whatever m (an update, a state).
    present: ``[K]`` boolean, the tasks present in the batch.
    rows: pytree of ``[K, ...]`` arrays (per-task gradients, losses, task ids, ...).
    if_none: ``if_none(out_shapes) -> out``, the result when no task is present
      (``out_shapes`` is ``out``'s ``jax.ShapeDtypeStruct`` tree).

  Returns:
    ``(out, per_row [K])`` with absent rows' ``per_row`` 0.
  """
  k = present.shape[0]
  order = present_first(present)
  rows = jax.tree.map(lambda a: a[order], rows)

  def branch(m):
    def run(rows):
      out, per_row = fn(jax.tree.map(lambda a: a[:m], rows))
      return out, jnp.zeros((k,), per_row.dtype).at[:m].set(per_row)

    return run

  shapes = jax.eval_shape(branch(k), rows)

  def none(rows):
    del rows
    return if_none(shapes[0]), jnp.zeros((k,), shapes[1].dtype)

  branches = [none] + [branch(m) for m in range(1, k + 1)]
  out, per_sorted = jax.lax.switch(jnp.sum(present, dtype=jnp.int32), branches, rows)
  return out, jnp.zeros_like(per_sorted).at[order].set(per_sorted)


def split_extras(extras: dict) -> tuple[dict, dict]:
  """``(per_task, others)``: the extras with a leading K axis, and the rest (rng, step)."""
  per_task = {k: v for k, v in extras.items() if k in PER_TASK_EXTRAS and v is not None}
  return per_task, {k: v for k, v in extras.items() if k not in per_task}


def zeros_like_shapes(shapes: Any) -> Any:
  """Zeros for a tree of ``jax.ShapeDtypeStruct``."""
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
