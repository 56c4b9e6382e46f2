"""``krum``: (Multi-)Krum (Blanchard et al., NeurIPS 2017)."""

import jax
import jax.numpy as jnp

from mtl_jax.aggregators._base import Aggregator, register, stateless_from_matrix
from mtl_jax.aggregators._solvers import task_gramian, weighted_rows


def krum_weights(gram_TxT: jax.Array, n_byzantine: int, n_selected: int) -> jax.Array:
  """Multi-Krum's weights from the Gramian: 1/m on the m rows with the lowest scores.

  The score of row i is the sum of its distances to its T − f − 2 nearest other rows
  (f = ``n_byzantine``), with ‖g_i − g_j‖² = G_ii + G_jj − 2 G_ij. The count is clamped
  at 0 and m = ``n_selected`` at T. Ties go to the lower row index.
  """
  t = gram_TxT.shape[0]
  sq_T = jnp.diagonal(gram_TxT)
  dist_TxT = jnp.sqrt(jnp.maximum(sq_T[:, None] + sq_T[None, :] - 2.0 * gram_TxT, 0.0))
  n_closest = max(t - n_byzantine - 2, 0)
  m = min(n_selected, t)
  # Sorted row i starts with its distance to itself (0), dropped as torchjd does.
  scores_T = jnp.sum(jnp.sort(dist_TxT, axis=1)[:, 1 : n_closest + 1], axis=1)
  selected = jnp.argsort(scores_T, stable=True)[:m]
  return jnp.zeros((t,), gram_TxT.dtype).at[selected].set(1.0 / m)


@register("krum")
def krum(n_byzantine: int = 1, n_selected: int = 1) -> Aggregator:
  """Krum / Multi-Krum: the mean of the ``n_selected`` most central task gradients.

  Blanchard, El Mhamdi, Guerraoui & Stainer, "Machine Learning with Adversaries: Byzantine
  Tolerant Gradient Descent", NeurIPS 2017, as torchjd's ``Krum``: each gradient is
  scored by the sum of its distances to its T − f − 2 nearest other gradients (f =
  ``n_byzantine``, the number of rows that may be adversarial); the update is the mean of
  the m = ``n_selected`` lowest-scored rows (m = 1: Krum). Distances come from the
  Gramian (float32, HIGHEST precision).

  Conventions: mean scale (weights 1/m on the selected rows; identical gradients give g).
  torchjd raises when T < f + 3 or T < m; here, since the number of sampled tasks K can
  be small, the neighbour count is clamped at 0 (every score is then 0 and the first m
  rows are taken) and m at T. T = 1 is the identity. Ties go to the lower row index.

  Args:
    n_byzantine: f ≥ 0, the number of rows that may come from an adversary.
    n_selected: m ≥ 1, rows averaged (Multi-Krum).

  Returns:
    A stateless aggregator.
  """
  for field, value, low in (("n_byzantine", n_byzantine, 0), ("n_selected", n_selected, 1)):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
      raise ValueError(f"krum: {field} must be an int >= {low}, got {value!r}")

  def fn(g_TxP):
    w_T = krum_weights(task_gramian(g_TxP), n_byzantine, n_selected)
    return weighted_rows(w_T, g_TxP).astype(g_TxP.dtype)

  return stateless_from_matrix(fn)
