"""Per-task losses L_i over padded outputs, selected by each task's loss kind.

All tasks share one stacked head of width ``output_size``; ``out_mask`` marks the outputs
a task really has and ``kind`` (an index into ``tasks.LOSS_KINDS``) its loss. The three
losses are cheap next to the network, so all are computed and one is selected with
``jnp.where``: this keeps the per-task loss a single function that vmaps over tasks.

Missing labels are NaN rows of ``y`` (:mod:`mtl_jax.tasks`): :func:`labelled_task_loss`
averages over the labelled rows only, and is exactly 0, with an exactly 0 gradient, when
no row of the batch is labelled.
"""

import jax
import jax.numpy as jnp
import optax

from mtl_jax.tasks import KIND_ID

_NEG = -1e9


def per_example_loss(
  out: jax.Array, y: jax.Array, kind: jax.Array, out_mask: jax.Array
) -> jax.Array:
  """Loss of each example of one task.

  Args:
    out: ``[B, O]`` model outputs (logits or predictions), padded to O.
    y: ``[B, Y]`` labels as stored in a TaskSet (class index in column 0 for softmax).
    kind: scalar int, the task's loss kind.
    out_mask: ``[O]`` bool, the task's real outputs.

  Returns:
    ``[B]`` losses: softmax cross-entropy; sigmoid cross-entropy averaged over the
    task's labels; squared error averaged over the task's targets.
  """
  o = out.shape[-1]
  valid = out_mask.astype(out.dtype)
  n_valid = jnp.maximum(valid.sum(), 1.0)
  # Pad labels / cut them to the output width so every branch has shape [B, O].
  y_o = (
    jnp.zeros(out.shape, out.dtype).at[:, : min(o, y.shape[-1])].set(y[:, : min(o, y.shape[-1])])
  )
  logits = jnp.where(out_mask[None], out, _NEG)
  labels = y[:, 0].astype(jnp.int32)
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  bce = (optax.sigmoid_binary_cross_entropy(out, y_o) * valid).sum(-1) / n_valid
  se = (jnp.square(out - y_o) * valid).sum(-1) / n_valid
  return jnp.where(
    kind == KIND_ID["softmax_ce"], ce, jnp.where(kind == KIND_ID["sigmoid_ce"], bce, se)
  )


def task_loss(out, y, kind, out_mask, weights=None) -> jax.Array:
  """Mean of :func:`per_example_loss` over the batch (optionally weighted/masked)."""
  per = per_example_loss(out, y, kind, out_mask)
  if weights is None:
    return per.mean()
  return (per * weights).sum() / jnp.maximum(weights.sum(), 1.0)


def labelled_rows(y: jax.Array) -> jax.Array:
  """``[..., B]`` boolean: rows of ``y [..., B, Y]`` whose label is present (not NaN)."""
  return ~jnp.isnan(y[..., 0])


def labelled_task_loss(out, y, kind, out_mask) -> jax.Array:
  """Mean of :func:`per_example_loss` over the labelled rows of the batch (NaN rows of ``y``
  are missing labels); 0 with a zero gradient when no row is labelled.

  The NaN rows are replaced by 0 before the loss is computed, so nothing non-finite
  reaches the gradient through the masked-out rows.
  """
  lab = labelled_rows(y)
  y = jnp.where(lab[:, None], y, 0.0)
  return task_loss(out, y, kind, out_mask, lab.astype(out.dtype))
