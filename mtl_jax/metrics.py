"""Per-task test metrics, vmapped over the task axis on padded splits."""

import jax
import jax.numpy as jnp
import numpy as np

from mtl_jax.losses import _NEG, per_example_loss
from mtl_jax.tasks import HIGHER_IS_BETTER, KIND_ID, TaskSet


def task_metrics(out, y, kind, out_mask, n, mean, std):
  """Sums needed for the metrics of one task over a padded split.

  Args:
    out: ``[N, O]`` outputs; y: ``[N, Y]`` standardised labels; kind: loss kind;
    out_mask: ``[O]``; n: number of real rows; mean/std: ``[Y]`` label standardisation.
    Rows with a missing label (NaN) are not counted.

  Returns:
    dict of scalars: ``loss``, ``accuracy``, ``mse`` (original label units), ``r2``.
  """
  # Real rows whose label is present (a missing label is a NaN row of y).
  rows = ((jnp.arange(out.shape[0]) < n) & ~jnp.isnan(y[:, 0])).astype(out.dtype)
  y = jnp.where(jnp.isnan(y), 0.0, y)
  count = jnp.maximum(rows.sum(), 1.0)
  valid = out_mask.astype(out.dtype)
  n_valid = jnp.maximum(valid.sum(), 1.0)
  loss = (per_example_loss(out, y, kind, out_mask) * rows).sum() / count
  o, w = out.shape[-1], min(out.shape[-1], y.shape[-1])
  y_o = jnp.zeros(out.shape, out.dtype).at[:, :w].set(y[:, :w])
  mean_o = jnp.zeros((o,), out.dtype).at[:w].set(mean[:w])
  std_o = jnp.ones((o,), out.dtype).at[:w].set(std[:w])
  # Classification accuracy: argmax over the task's classes; multi-label: per label.
  pred_cls = jnp.argmax(jnp.where(out_mask[None], out, _NEG), -1)
  acc_soft = (pred_cls == y[:, 0].astype(jnp.int32)).astype(out.dtype)
  acc_sig = (((out > 0) == (y_o > 0.5)).astype(out.dtype) * valid).sum(-1) / n_valid
  acc = jnp.where(kind == KIND_ID["softmax_ce"], acc_soft, acc_sig)
  accuracy = (acc * rows).sum() / count
  # Regression in the task's original units.
  y_raw, p_raw = y_o * std_o + mean_o, out * std_o + mean_o
  se = (jnp.square(p_raw - y_raw) * valid).sum(-1) / n_valid
  mse = (se * rows).sum() / count
  y_bar = (y_raw * rows[:, None]).sum(0) / count
  var = ((jnp.square(y_raw - y_bar) * valid).sum(-1) / n_valid * rows).sum() / count
  r2 = 1.0 - mse / jnp.maximum(var, 1e-12)
  return {"loss": loss, "accuracy": accuracy, "mse": mse, "r2": r2}


def evaluate(model, params, data, split: str = "test") -> dict[str, jax.Array]:
  """All tasks' metrics on a split: dict of ``[T]`` arrays (jittable).

  ``data`` is a :class:`mtl_jax.data.sampling.DeviceData`.
  """
  x = getattr(data, f"x_{split}")
  out = model.apply(params, x, jnp.arange(x.shape[0]))
  return metrics_from_outputs(out, data, split)


def metrics_from_outputs(out: jax.Array, data, split: str = "test") -> dict[str, jax.Array]:
  """All tasks' metrics from the model's outputs ``out [T, N_max, O]`` on a split's rows
  (:func:`evaluate` without the forward pass; the streaming path computes ``out`` in
  host-fed pieces). ``data`` needs the split's labels and counts, not its inputs."""
  y, n = getattr(data, f"y_{split}"), getattr(data, f"n_{split}")
  return jax.vmap(task_metrics)(
    out, y, data.kind, data.out_mask, n, data.label_mean, data.label_std
  )


def metrics_by_task(taskset: TaskSet, metrics: dict) -> dict[str, dict[str, float]]:
  """``{task: {metric: value}}`` keeping the metrics that make sense for each task."""
  m = {k: np.asarray(v) for k, v in metrics.items()}
  out = {}
  for i, spec in enumerate(taskset.specs):
    keys = ["accuracy", "loss"] if spec.loss != "mse" else ["mse", "r2", "loss"]
    out[spec.name] = {k: float(m[k][i]) for k in keys}
  return out


def delta_m(taskset: TaskSet, mtl: dict, single: dict) -> tuple[float, dict[str, float]]:
  """Δm% of Maninis et al. (2019): mean relative improvement of MTL over single-task.

  Δm = 100/T Σ_i s_i (M_mtl,i − M_stl,i) / |M_stl,i| with s_i = +1 when higher is better
  (accuracy) and −1 when lower is better (MSE), on each task's primary metric: positive
  means multi-task learning helped.

  Returns:
    ``(delta_m, per_task_relative_improvement_percent)``.
  """
  per = {}
  for spec in taskset.specs:
    k = spec.primary_metric
    sign = 1.0 if HIGHER_IS_BETTER[k] else -1.0
    base = single[spec.name][k]
    per[spec.name] = 100.0 * sign * (mtl[spec.name][k] - base) / max(abs(base), 1e-12)
  return float(np.mean(list(per.values()))), per
