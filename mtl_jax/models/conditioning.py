"""Task-conditioned networks: one shared trunk told *which* task through z_i (CS330 lec. 2).

A conditioned layer is a Dense + ReLU layer whose pre-activation a = h W + b is modulated
by the task descriptor z (:mod:`mtl_jax.models.descriptors`):

* ``concat``:          a = [h, z] W + b                    (concatenation)
* ``additive``:        a = h W_h + b + z W_z               (additive)
* ``multiplicative``:  a = (h W + b) ⊙ (z W_z + b_z)       (gating; b_z starts at 1, W_z at 0)
* ``film``:            a = γ(z) ⊙ (h W + b) + β(z),  γ(z) = 1 + z W_γ + b_γ, β(z) = z W_β + b_β
                       (FiLM, Perez et al., AAAI 2018; W_γ, b_γ, W_β, b_β start at 0)

Multiplicative and FiLM start as the identity modulation (the unconditioned layer) and
learn their task dependence; concat and additive start with a random W_z.

Concatenation *is* additive conditioning: splitting W = [W_h; W_z] gives
[h, z] W + b = h W_h + b + z W_z exactly, which :func:`concat_to_additive` /
:func:`additive_to_concat` map both ways (proved in ``tests/test_conditioning.py``).

``condition_at="input"`` conditions only the first trunk layer (the rest are plain Dense +
ReLU); ``"all"`` conditions every trunk layer. All trunk parameters (and a learned
descriptor table) are θ^sh; θ^i is one linear head per task, except for
``share_all_but_z``, whose head is shared too: the *only* task-specific thing is z_i
(params["tasks"] is empty; outputs are padded to the largest task as usual). Inputs are
flattened (these are MLP trunks).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mtl_jax.models import register
from mtl_jax.models.base import MultiTaskModel
from mtl_jax.models.descriptors import TaskDescriptor
from mtl_jax.models.layers import DenseBlock, Head, flatten_features, init_stack


def _rows(z, h):
  """z ``[d]`` repeated for every example of ``h [B, ...]``: ``[B, d]``."""
  return jnp.broadcast_to(z, (h.shape[0], z.shape[-1]))


class ConcatDense(nn.Module):
  """relu([h, z] W + b); params ``{"dense": {"kernel" [H+d, F], "bias" [F]}}``."""

  features: int
  activate: bool = True

  @nn.compact
  def __call__(self, h, z):
    h = flatten_features(h)
    a = nn.Dense(self.features, name="dense")(jnp.concatenate([h, _rows(z, h)], -1))
    return nn.relu(a) if self.activate else a


class AdditiveDense(nn.Module):
  """relu(h W_h + b + z W_z); params ``{"h": {"kernel", "bias"}, "z": {"kernel"}}``."""

  features: int
  activate: bool = True

  @nn.compact
  def __call__(self, h, z):
    h = flatten_features(h)
    a = nn.Dense(self.features, name="h")(h) + nn.Dense(self.features, use_bias=False, name="z")(
      _rows(z, h)
    )
    return nn.relu(a) if self.activate else a


class MultiplicativeDense(nn.Module):
  """relu((h W + b) ⊙ (z W_z + b_z)) with W_z = 0, b_z = 1 at init (identity gate)."""

  features: int
  activate: bool = True

  @nn.compact
  def __call__(self, h, z):
    h = flatten_features(h)
    gate = nn.Dense(
      self.features, kernel_init=nn.initializers.zeros, bias_init=nn.initializers.ones, name="z"
    )(_rows(z, h))
    a = nn.Dense(self.features, name="h")(h) * gate
    return nn.relu(a) if self.activate else a


class FiLMDense(nn.Module):
  """relu(γ(z) ⊙ (h W + b) + β(z)), γ = 1 + z W_γ + b_γ, β = z W_β + b_β (zero init).

  Perez et al., "FiLM: Visual Reasoning with a General Conditioning Layer", AAAI 2018.
  """

  features: int
  activate: bool = True

  @nn.compact
  def __call__(self, h, z):
    h = flatten_features(h)
    zb = _rows(z, h)
    zeros = nn.initializers.zeros
    gamma = 1.0 + nn.Dense(self.features, kernel_init=zeros, name="gamma")(zb)
    beta = nn.Dense(self.features, kernel_init=zeros, name="beta")(zb)
    a = gamma * nn.Dense(self.features, name="h")(h) + beta
    return nn.relu(a) if self.activate else a


LAYERS = {
  "concat": ConcatDense,
  "additive": AdditiveDense,
  "multiplicative": MultiplicativeDense,
  "film": FiLMDense,
}


def concat_to_additive(params: dict, h_dim: int) -> dict:
  """Concat-layer params → additive-layer params with identical outputs (W = [W_h; W_z])."""
  k, b = params["dense"]["kernel"], params["dense"]["bias"]
  return {"h": {"kernel": k[:h_dim], "bias": b}, "z": {"kernel": k[h_dim:]}}


def additive_to_concat(params: dict) -> dict:
  """Additive-layer params → concat-layer params with identical outputs."""
  k = jnp.concatenate([params["h"]["kernel"], params["z"]["kernel"]], 0)
  return {"dense": {"kernel": k, "bias": params["h"]["bias"]}}


class ConditionedNet(MultiTaskModel):
  """A shared MLP trunk conditioned on z_i, plus per-task heads (or one shared head).

  ``params["shared"]``: ``layer_0 .. layer_{depth-1}``, ``task_embedding`` (learned
  descriptor only) and ``head`` (``shared_head`` only); ``params["tasks"]``:
  ``{"head": [T, ...]}`` or ``{}``. ``layers`` is the trunk (every layer shared);
  ``conditioned[i]`` says whether layer i takes z. Defaults: the registered builders.
  """

  def __init__(
    self,
    conditioning: str,
    descriptor: TaskDescriptor,
    num_tasks: int,
    output_size: int,
    *,
    width: int,
    depth: int,
    condition_at: str,
    shared_head: bool,
    name: str,
  ):
    if conditioning not in LAYERS:
      raise ValueError(f"unknown conditioning {conditioning!r}; valid: {sorted(LAYERS)}")
    if condition_at not in ("input", "all"):
      raise ValueError(f"condition_at must be 'input' or 'all', got {condition_at!r}")
    if depth < 1:
      raise ValueError(f"a conditioned trunk needs depth >= 1, got {depth}")
    super().__init__(num_tasks, output_size, name=name)
    self.conditioned = [i == 0 or condition_at == "all" for i in range(depth)]
    self.layers = [
      LAYERS[conditioning](width) if c else DenseBlock(width) for c in self.conditioned
    ]
    self.head = Head(output_size)
    self.conditioning = conditioning
    self.descriptor = descriptor
    self.condition_at = condition_at
    self.shared_head = shared_head

  def _layer(self, i, p, h, z):
    if self.conditioned[i]:
      return self.layers[i].apply({"params": p}, h, z)
    return self.layers[i].apply({"params": p}, h)

  def init(self, rng: jax.Array, x: jax.Array) -> dict:
    keys = jax.random.split(rng, len(self.layers) + 2)
    shared = dict(self.descriptor.init(keys[-2]))
    z = self.descriptor(shared, jnp.zeros((), jnp.int32))
    h = x
    for i, (layer, key) in enumerate(zip(self.layers, keys)):
      args = (h, z) if self.conditioned[i] else (h,)
      shared[f"layer_{i}"] = layer.init(key, *args)["params"]
      h = self._layer(i, shared[f"layer_{i}"], h, z)
    if self.shared_head:
      shared["head"] = self.head.init(keys[-1], h)["params"]
      return {"shared": shared, "tasks": {}}
    tasks = {"head": init_stack(self.head, keys[-1], self.num_tasks, h)}
    return {"shared": shared, "tasks": tasks}

  def apply_task(self, shared: dict, task: dict, task_id: jax.Array, x: jax.Array) -> jax.Array:
    z = self.descriptor(shared, task_id)
    h = x
    for i in range(len(self.layers)):
      h = self._layer(i, shared[f"layer_{i}"], h, z)
    head = shared["head"] if self.shared_head else task["head"]
    return self.head.apply({"params": head}, h)

  def last_shared_path(self) -> tuple[str, ...]:
    """The last trunk layer (the whole trunk is shared)."""
    return (f"layer_{len(self.layers) - 1}",)


def _build(
  conditioning,
  name,
  num_tasks,
  output_size,
  descriptors,
  trunk,
  width,
  depth,
  descriptor,
  embed_dim,
  condition_at,
  standardize_descriptors,
  shared_head,
):
  if trunk != "mlp":
    raise ValueError(f"model {name!r} conditions an MLP trunk; got trunk={trunk!r}")
  desc = TaskDescriptor(
    descriptor,
    num_tasks,
    embed_dim,
    None if descriptors is None else np.asarray(descriptors),
    standardize_descriptors,
  )
  return ConditionedNet(
    conditioning,
    desc,
    num_tasks,
    output_size,
    width=width,
    depth=depth,
    condition_at=condition_at,
    shared_head=shared_head,
    name=name,
  )


def _register(conditioning: str):
  def builder(
    *,
    num_tasks,
    output_size,
    input_shape=None,
    descriptors=None,
    trunk="mlp",
    width=64,
    depth=2,
    descriptor="onehot",
    embed_dim=8,
    condition_at="input",
    standardize_descriptors=True,
  ):
    del input_shape
    return _build(
      conditioning,
      conditioning,
      num_tasks,
      output_size,
      descriptors,
      trunk,
      width,
      depth,
      descriptor,
      embed_dim,
      condition_at,
      standardize_descriptors,
      shared_head=False,
    )

  builder.__name__ = conditioning
  builder.__doc__ = (
    f"Shared MLP trunk with {conditioning} conditioning on z_i + per-task "
    "heads.\n\n  model_kwargs: width, depth, descriptor (onehot|embedding|"
    "metadata), embed_dim, condition_at (input|all), standardize_descriptors.\n"
  )
  register(conditioning)(builder)


for _c in LAYERS:
  _register(_c)


@register("share_all_but_z")
def share_all_but_z(
  *,
  num_tasks,
  output_size,
  input_shape=None,
  descriptors=None,
  conditioning="concat",
  trunk="mlp",
  width=64,
  depth=2,
  descriptor="onehot",
  embed_dim=8,
  condition_at="input",
  standardize_descriptors=True,
):
  """Everything shared, heads included; the only task-specific thing is z_i.

  model_kwargs: conditioning (concat|additive|multiplicative|film; default concat at the
  input: the lecture's "concatenate z_i to the input"), width, depth, descriptor,
  embed_dim, condition_at, standardize_descriptors.
  """
  del input_shape
  return _build(
    conditioning,
    "share_all_but_z",
    num_tasks,
    output_size,
    descriptors,
    trunk,
    width,
    depth,
    descriptor,
    embed_dim,
    condition_at,
    standardize_descriptors,
    shared_head=True,
  )
