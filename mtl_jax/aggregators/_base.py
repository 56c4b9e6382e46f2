"""Registry and pytree <-> matrix helpers shared by all aggregators."""

import inspect
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from optax.experimental import aggregating

from mtl_jax.aggregators._solvers import task_gramian
from mtl_jax.registry import Registry

Aggregator = aggregating.Aggregator

_REGISTRY = Registry("aggregator", "method_kwargs")
register = _REGISTRY.register
names = _REGISTRY.names


def get(name: str, **hyperparams: Any) -> Aggregator:
  """Builds the aggregator registered as ``name`` with the given hyperparameters."""
  return _REGISTRY.get(name, **hyperparams)


def chain(aggregator: Aggregator, optimizer: optax.GradientTransformation) -> Aggregator:
  """Puts ``aggregator`` in front of any optax optimiser (per-task grads in)."""
  return aggregating.process(optax.identity(), aggregator, optimizer)


def normalized(aggregator: Aggregator, eps: float = 1e-12) -> Aggregator:
  """``aggregator`` fed unit-norm task gradients: row i becomes g_i / max(‖g_i‖, eps).

  The norm of a task's gradient is taken over every leaf of the pytree together (the
  task's whole gradient of θ^sh, or of the representation with ``rep_grad``); a zero row
  stays zero. State, extras and the output's structure are the wrapped aggregator's.
  """
  if not eps > 0:
    raise ValueError(f"normalized: eps must be > 0, got {eps}")

  def update(per_task_grads, state, params=None, **extra):
    leaves = jax.tree.leaves(per_task_grads)
    sq = sum(jnp.sum(jnp.square(l.astype(jnp.float32)).reshape(l.shape[0], -1), 1) for l in leaves)
    scale_T = 1.0 / jnp.maximum(jnp.sqrt(sq), eps)
    unit = jax.tree.map(
      lambda l: (l * scale_T.reshape((-1,) + (1,) * (l.ndim - 1))).astype(l.dtype), per_task_grads
    )
    return aggregator.update(unit, state, params, **extra)

  # The wrapped update's keyword extras stay visible (methods.declared_extras reads them).
  update.__signature__ = inspect.signature(aggregator.update)
  return Aggregator(aggregator.init, update)


def flatten_tasks(per_task_grads) -> tuple[jax.Array, Callable[[jax.Array], Any]]:
  """Stacks every leaf's ``[T, ...]`` into one ``g_TxP`` matrix.

  Returns:
    ``(g_TxP, unflatten)`` where ``unflatten(v_P)`` rebuilds a pytree shaped like
    one task's gradient (leaves without the task axis, original dtypes).
  """
  leaves, treedef = jax.tree.flatten(per_task_grads)
  if not leaves:
    raise ValueError("per_task_grads has no leaves")
  t = leaves[0].shape[0]
  for leaf in leaves:
    if leaf.ndim < 1 or leaf.shape[0] != t:
      raise ValueError(
        "every leaf of per_task_grads needs the same leading task axis; got "
        f"shapes {[l.shape for l in leaves]}"
      )
  shapes = [l.shape[1:] for l in leaves]
  dtypes = [l.dtype for l in leaves]
  sizes = [math.prod(s) for s in shapes]
  dtype = jnp.result_type(*dtypes)
  g = jnp.concatenate([l.reshape(t, -1).astype(dtype) for l in leaves], axis=1)

  def unflatten(v):
    out, start = [], 0
    for shape, size, dt in zip(shapes, sizes, dtypes):
      out.append(v[start : start + size].reshape(shape).astype(dt))
      start += size
    return jax.tree.unflatten(treedef, out)

  return g, unflatten


def implied_weights(per_task_grads, update) -> jax.Array:
  """``α [T]`` with Σ_i α_i g_i closest to ``update`` (least squares over the task rows).

  Most aggregators return a combination of the task gradients (Σ α_i g_i, α from a QP,
  a closed form, a bargaining solution, projections...); when the T rows are linearly
  independent this recovers their α exactly: α = (G Gᵀ)⁺ G d. For an update outside the
  rows' span (coordinate-wise methods such as ``graddrop`` or ``trimmed_mean``) it is the
  least-squares fit.
  """
  g, _ = flatten_tasks(per_task_grads)
  d = jnp.concatenate([jnp.ravel(l).astype(g.dtype) for l in jax.tree.leaves(update)])
  gd = jnp.dot(g.astype(jnp.float32), d.astype(jnp.float32), precision=jax.lax.Precision.HIGHEST)
  return jnp.linalg.pinv(task_gramian(g).astype(jnp.float32), hermitian=True) @ gd


def task_rows(name: str, k: int, task_ids, max_tasks: int) -> jax.Array:
  """Rows of a per-task state table (sized ``max_tasks`` = T) for the K gradients of an
  update: ``task_ids`` when the train step passes them, else 0..K-1 (all tasks, in order).

  Raises:
    ValueError: no ``task_ids`` and more gradient rows than the table holds.
  """
  if task_ids is None:
    if k > max_tasks:
      raise ValueError(
        f"{name} got {k} tasks but its state holds max_tasks={max_tasks}; raise max_tasks"
      )
    return jnp.arange(k)
  return jnp.asarray(task_ids)


def stateless_from_matrix(fn: Callable[[jax.Array], jax.Array]) -> Aggregator:
  """Builds a stateless aggregator from ``fn(g_TxP) -> update_P``."""

  def init(params):
    del params
    return optax.EmptyState()

  def update(per_task_grads, state, params=None, **extra):
    del params, extra
    g, unflatten = flatten_tasks(per_task_grads)
    return unflatten(fn(g)), state

  return Aggregator(init, update)
