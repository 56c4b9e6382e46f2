"""``mean``: update = (1/T) Σ_i g_i."""

import jax.numpy as jnp

from mtl_jax.aggregators._base import register, stateless_from_matrix


@register("mean")
def mean_aggregator():
  """Averages the task gradients: the gradient of (1/T) Σ_i L_i."""
  return stateless_from_matrix(lambda g_TxP: jnp.mean(g_TxP, axis=0))
