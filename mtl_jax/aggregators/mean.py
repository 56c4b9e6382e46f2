"""``mean``: update = (1/T) Σ_i g_i."""

import jax.numpy as jnp

from mtl_jax.aggregators._base import register, stateless_from_matrix
from mtl_jax.aggregators._solvers import weighted_rows


@register("mean")
def mean_aggregator():
  """Averages the task gradients: the gradient of (1/T) Σ_i L_i. T = 1 is the identity."""

  def fn(g_TxP):
    t = g_TxP.shape[0]
    return weighted_rows(jnp.full((t,), 1.0 / t, g_TxP.dtype), g_TxP)

  return stateless_from_matrix(fn)
