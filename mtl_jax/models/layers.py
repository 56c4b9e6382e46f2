"""Layers the models are built from, and the helpers that stack them per task.

Trunk layers are one linen module ``h -> h'`` each, so a trunk can be split anywhere
(:data:`TRUNKS` builds the ``mlp`` and ``conv`` trunks); :class:`Head` is the linear task
head; :func:`init_stack` initialises n copies of a module as one stacked pytree.
"""

import math

import flax.linen as nn
import jax


def flatten_features(h: jax.Array) -> jax.Array:
  """``[B, ...] -> [B, D]``: image maps become feature vectors; 2-D inputs pass through."""
  return h.reshape(h.shape[0], -1) if h.ndim > 2 else h


def init_stack(module: nn.Module, rng: jax.Array, n: int, *args) -> dict:
  """Params of n independently initialised copies of ``module``: leaves ``[n, ...]``.

  The stacked per-task (or per-expert) parameters: ``jax.vmap(init)`` over
  ``jax.random.split(rng, n)``.
  """
  return jax.vmap(lambda k: module.init(k, *args)["params"])(jax.random.split(rng, n))


class DenseBlock(nn.Module):
  """Dense + ReLU on the last axis (flattens image inputs first)."""

  features: int

  @nn.compact
  def __call__(self, h):
    h = flatten_features(h)
    return nn.relu(nn.Dense(self.features)(h))


class ConvBlock(nn.Module):
  """3×3 conv + ReLU, then 2×2 average pooling when the map is still larger than 2×2."""

  features: int

  @nn.compact
  def __call__(self, h):
    h = nn.relu(nn.Conv(self.features, (3, 3))(h))
    if h.shape[-2] > 2:
      h = nn.avg_pool(h, (2, 2), strides=(2, 2))
    return h


class Head(nn.Module):
  """Linear task head producing the padded output vector."""

  features: int

  @nn.compact
  def __call__(self, h):
    h = flatten_features(h)
    return nn.Dense(self.features)(h)


def mlp_trunk(width: int, depth: int) -> list[nn.Module]:
  """``depth`` Dense+ReLU layers of ``width`` units."""
  return [DenseBlock(width) for _ in range(depth)]


def conv_trunk(width: int, depth: int, dense: int | None = None) -> list[nn.Module]:
  """``depth`` conv blocks (``width``, 2·``width``, ...) and one Dense+ReLU layer
  (``dense`` units, by default 2·``width``)."""
  layers = [ConvBlock(width * 2**i) for i in range(depth)]
  return layers + [DenseBlock(dense or 2 * width)]


TRUNKS = {"mlp": mlp_trunk, "conv": conv_trunk}


def count_params(tree) -> int:
  """Number of scalars in a pytree of arrays (or of ``jax.ShapeDtypeStruct``s)."""
  return int(sum(math.prod(x.shape) for x in jax.tree.leaves(tree)))
