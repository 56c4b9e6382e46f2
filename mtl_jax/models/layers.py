"""Trunk layers: each is one linen module ``h -> h'`` so a trunk can be split anywhere."""

import math

import flax.linen as nn
import jax


class DenseBlock(nn.Module):
  """Dense + ReLU on the last axis (flattens image inputs first)."""

  features: int

  @nn.compact
  def __call__(self, h):
    if h.ndim > 2:
      h = h.reshape(h.shape[0], -1)
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
    if h.ndim > 2:
      h = h.reshape(h.shape[0], -1)
    return nn.Dense(self.features)(h)


def mlp_trunk(width: int = 64, depth: int = 2) -> list[nn.Module]:
  """``depth`` Dense+ReLU layers of ``width`` units."""
  return [DenseBlock(width) for _ in range(depth)]


def conv_trunk(width: int = 32, depth: int = 2, dense: int | None = None) -> list[nn.Module]:
  """``depth`` conv blocks (``width``, 2·``width``, ...) and one Dense+ReLU layer."""
  layers = [ConvBlock(width * 2**i) for i in range(depth)]
  return layers + [DenseBlock(dense or 2 * width)]


TRUNKS = {"mlp": mlp_trunk, "conv": conv_trunk}


def count_params(tree) -> int:
  """Number of scalars in a pytree of arrays (or of ``jax.ShapeDtypeStruct``s)."""
  return int(sum(math.prod(x.shape) for x in jax.tree.leaves(tree)))
