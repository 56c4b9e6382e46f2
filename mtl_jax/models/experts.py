"""Building blocks for mixture-of-experts models: MLPs, stacks of them, softmax gates.

A stack of n modules of one shape is one pytree with a leading axis n, made by
``jax.vmap(module.init)`` over split keys and applied with ``jax.vmap(module.apply)``,
the same trick as the task stack (no Python loop over experts or tasks).
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mtl_jax.models.layers import flatten_features


class MLP(nn.Module):
  """Dense + ReLU layers of the given widths (flattens image inputs first)."""

  features: Sequence[int]

  @nn.compact
  def __call__(self, h):
    h = flatten_features(h)
    for f in self.features:
      h = nn.relu(nn.Dense(f)(h))
    return h


class Gate(nn.Module):
  """Softmax gate g(x) = softmax(x W) over ``num_experts`` (no bias, as in MMoE eq. 6)."""

  num_experts: int

  @nn.compact
  def __call__(self, h):
    h = flatten_features(h)
    return jax.nn.softmax(nn.Dense(self.num_experts, use_bias=False)(h), axis=-1)


def apply_stack(module: nn.Module, params: dict, h: jax.Array) -> jax.Array:
  """Every copy of a stack on the same input: ``h [B, ...] -> [n, B, F]``."""
  return jax.vmap(lambda p: module.apply({"params": p}, h))(params)


def mix(gate_BxE: jax.Array, out_ExBxF: jax.Array) -> jax.Array:
  """Σ_e g_e(x) f_e(x): ``[B, E] × [E, B, F] -> [B, F]``."""
  return jnp.einsum("be,ebf->bf", gate_BxE, out_ExBxF)
