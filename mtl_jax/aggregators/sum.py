"""``sum``: the vanilla multi-task objective, update = Σ_i g_i."""

import jax.numpy as jnp

from mtl_jax.aggregators._base import register, stateless_from_matrix
from mtl_jax.aggregators._solvers import weighted_rows


@register("sum")
def sum_aggregator():
  """Sums the task gradients: the gradient of Σ_i L_i. T = 1 is the identity.

  Computed as the matrix-vector product 1ᵀG (XLA on CPU fuses a plain reduction over the
  task axis with the per-task backward passes into a much slower loop).
  """
  return stateless_from_matrix(
    lambda g_TxP: weighted_rows(jnp.ones(g_TxP.shape[:1], g_TxP.dtype), g_TxP)
  )
