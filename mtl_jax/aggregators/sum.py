"""``sum``: the vanilla multi-task objective, update = Σ_i g_i."""

import jax.numpy as jnp

from mtl_jax.aggregators._base import register, stateless_from_matrix


@register("sum")
def sum_aggregator():
  """Sums the task gradients: the gradient of Σ_i L_i. T = 1 is the identity."""
  return stateless_from_matrix(lambda g_TxP: jnp.sum(g_TxP, axis=0))
