"""The gradient paths of a training step, as module-level pure functions.

Every function takes an :class:`Objective` (what the per-task losses are computed from),
the parameters ``{"shared": θ^sh, "tasks": θ^{1..T} stacked}`` and a sampled
:class:`~mtl_jax.data.sampling.TaskBatch` of K tasks. They can be called (and tested)
alone; :mod:`mtl_jax.methods` combines them into the two method adapters.

* :func:`weighted_grads` — one backward pass of Σ_k sg(w_k)·L_k (+ the model's regulariser);
* :func:`per_task_grads` — each sampled task's gradient of θ^sh (a ``[K, ...]`` pytree):
  ``vmap(grad)`` when tasks have their own inputs, one forward pass and K vmapped VJPs when
  they share one input batch (the shared trunk then runs once);
* :func:`representation_task_grads` — each task's gradient of the shared representation
  Z and the trunk's VJP (aggregating w.r.t. Z instead of θ^sh, ``rep_grad``);
* :func:`last_layer_grad_norms`, :func:`representation_grads` — the extras some methods
  declare (GradNorm's ‖∇_W L_k‖, MGDA-UB's ∂L_k/∂Z).
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mtl_jax.data.sampling import TaskBatch
from mtl_jax.losses import labelled_rows, labelled_task_loss, task_loss
from mtl_jax.models.base import gather_tasks


class Objective(NamedTuple):
  """What the per-task losses are computed from (static for a compiled step).

  Attributes:
    model: the multi-task model (``init``/``apply_task``/``regularizer``, ...).
    kind: ``[T]`` loss-kind ids of the tasks.
    out_mask: ``[T, O]`` which output units each task uses.
    shared_inputs: every task in a batch sees the same inputs (one p(x), multi-label).
    missing_labels: some labels are missing (NaN rows of ``y``): each task's loss is the
      mean over its labelled rows (0, with a zero gradient, when it has none in the
      batch) and methods see which tasks are present (:func:`present_tasks`).
  """

  model: Any
  kind: jax.Array
  out_mask: jax.Array
  shared_inputs: bool = False
  missing_labels: bool = False


def tree_norm(tree) -> jax.Array:
  """Global L2 norm of a pytree (0 for an empty one), accumulated in float32."""
  leaves = jax.tree.leaves(tree)
  if not leaves:
    return jnp.zeros(())
  return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in leaves))


def loss_of_outputs(obj: Objective, out, y, task_id) -> jax.Array:
  """L_i of one task's outputs ``[B, O]`` (over its labelled rows with missing labels)."""
  loss = labelled_task_loss if obj.missing_labels else task_loss
  return loss(out, y, obj.kind[task_id], obj.out_mask[task_id])


def present_tasks(obj: Objective, batch: TaskBatch) -> jax.Array:
  """``[K]`` boolean: sampled tasks with at least one labelled example in the batch (all
  True without missing labels). An absent task's loss and gradients are exactly 0."""
  if not obj.missing_labels:
    return jnp.ones(batch.task.shape, bool)
  return labelled_rows(batch.y).any(-1)


def one_task_loss(obj: Objective, shared, task_p, task_id, x, y) -> jax.Array:
  """L_i for one task's parameters and batch ``x [B, ...]``, ``y [B, Y]``."""
  return loss_of_outputs(obj, obj.model.apply_task(shared, task_p, task_id, x), y, task_id)


def _x_axis(obj: Objective):
  # With one p(x) every task's rows are the same examples: passing them unbatched lets
  # vmap run the shared trunk once per step instead of K times.
  return None if obj.shared_inputs else 0


def _task_x(obj: Objective, batch: TaskBatch) -> jax.Array:
  return batch.x[0] if obj.shared_inputs else batch.x


def sampled_losses(obj: Objective, shared, task_k, batch: TaskBatch) -> jax.Array:
  """``[K]`` losses of the sampled tasks, given their gathered parameters ``task_k``."""
  fn = jax.vmap(
    lambda s, p, i, x, y: one_task_loss(obj, s, p, i, x, y), in_axes=(None, 0, 0, _x_axis(obj), 0)
  )
  return fn(shared, task_k, batch.task, _task_x(obj, batch), batch.y)


def task_losses(obj: Objective, params, batch: TaskBatch) -> jax.Array:
  """``[K]`` per-task losses L_k(θ^sh, θ^k) of the sampled tasks."""
  task_k = gather_tasks(params["tasks"], batch.task)
  return sampled_losses(obj, params["shared"], task_k, batch)


def weighted_grads(
  obj: Objective, params, batch: TaskBatch, weigh: Callable[[jax.Array], tuple[jax.Array, Any]]
):
  """One backward pass of Σ_k sg(w_k)·L_k + regulariser, with ``w, aux = weigh(sg(L))``.

  Returns:
    ``(grads, losses [K], weights [K], aux)``.
  """

  def total(params):
    losses = task_losses(obj, params, batch)
    w, aux = weigh(jax.lax.stop_gradient(losses))
    w = jax.lax.stop_gradient(w)
    return jnp.sum(w * losses) + obj.model.regularizer(params), (losses, w, aux)

  grads, (losses, w, aux) = jax.grad(total, has_aux=True)(params)
  return grads, losses, w, aux


def per_task_grads(obj: Objective, params, batch: TaskBatch):
  """Each sampled task's gradient of θ^sh and of its own θ^k (no regulariser).

  Returns:
    ``(losses [K], g_shared, g_tasks)``: ``g_shared`` is θ^sh's structure with a leading
    K axis (row k = ∇_{θ^sh} L_k); ``g_tasks`` is the gathered ``[K, ...]`` task rows.
  """
  task_k = gather_tasks(params["tasks"], batch.task)
  if obj.shared_inputs:
    losses, vjp = jax.vjp(lambda s, p: sampled_losses(obj, s, p, batch), params["shared"], task_k)
    g_sh, _ = jax.vmap(vjp)(jnp.eye(losses.shape[0], dtype=losses.dtype))
    _, g_task = vjp(jnp.ones_like(losses))
    return losses, g_sh, g_task
  grad_fn = jax.value_and_grad(lambda s, p, i, x, y: one_task_loss(obj, s, p, i, x, y), (0, 1))
  losses, (g_sh, g_task) = jax.vmap(grad_fn, in_axes=(None, 0, 0, 0, 0))(
    params["shared"], task_k, batch.task, batch.x, batch.y
  )
  return losses, g_sh, g_task


def representation_task_grads(obj: Objective, params, batch: TaskBatch):
  """Each task's gradient w.r.t. the shared representation Z (LibMTL's ``rep_grad``).

  With one input batch shared by the K tasks, the trunk runs once: Z = represent(θ^sh, x).
  Returns ``(losses [K], g_z [K, B, D], g_tasks, trunk_vjp)``; ``trunk_vjp(dZ)`` maps an
  aggregated ∂/∂Z back to θ^sh (one backward pass through the trunk, whatever K).
  """
  model = obj.model
  task_k = gather_tasks(params["tasks"], batch.task)
  z, trunk_vjp = jax.vjp(lambda s: model.represent(s, batch.x[0]), params["shared"])

  def head_loss(z, task_p, task_id, y):
    return loss_of_outputs(obj, model.apply_from_representation(task_p, z), y, task_id)

  grad_fn = jax.vmap(jax.value_and_grad(head_loss, (0, 1)), in_axes=(None, 0, 0, 0))
  losses, (g_z, g_task) = grad_fn(z, task_k, batch.task, batch.y)
  return losses, g_z, g_task, lambda dz: trunk_vjp(dz.astype(z.dtype))[0]


def scatter_tasks(task_params, task_ids: jax.Array, g_task):
  """Scatter-adds the K gathered task rows back into zeros shaped like the T stack."""
  return jax.tree.map(lambda p, g: jnp.zeros_like(p).at[task_ids].add(g), task_params, g_task)


def regularizer_grads(obj: Objective, params):
  """Gradient of the model's penalty (soft sharing's λ Σ‖θ^t − θ^t'‖; zeros otherwise)."""
  return jax.grad(obj.model.regularizer)(params)


def last_layer_grad_norms(obj: Objective, params, batch: TaskBatch) -> jax.Array:
  """``[K]`` norms ‖∇_W L_k‖ at the last shared layer W (GradNorm's W)."""
  path = obj.model.last_shared_path()
  w = params["shared"][path[0]]

  def loss_w(w, task_p, task_id, x, y):
    shared = dict(params["shared"])
    shared[path[0]] = w
    return one_task_loss(obj, shared, task_p, task_id, x, y)

  task_k = gather_tasks(params["tasks"], batch.task)
  g = jax.vmap(jax.grad(loss_w), in_axes=(None, 0, 0, _x_axis(obj), 0))(
    w, task_k, batch.task, _task_x(obj, batch), batch.y
  )
  return jax.vmap(tree_norm)(g)


def representation_grads(obj: Objective, params, batch: TaskBatch) -> jax.Array:
  """``[K, B, D]`` gradients ∂L_k/∂Z_k, Z = the shared trunk's output (MGDA-UB)."""
  model = obj.model
  task_k = gather_tasks(params["tasks"], batch.task)

  def head_loss(z, task_p, task_id, y):
    return loss_of_outputs(obj, model.apply_from_representation(task_p, z), y, task_id)

  if obj.shared_inputs:
    z = model.represent(params["shared"], _task_x(obj, batch))
  else:
    z = jax.vmap(model.represent, in_axes=(None, 0))(params["shared"], batch.x)
  return jax.vmap(jax.grad(head_loss), in_axes=(_x_axis(obj), 0, 0, 0))(
    jax.lax.stop_gradient(z), task_k, batch.task, batch.y
  )
