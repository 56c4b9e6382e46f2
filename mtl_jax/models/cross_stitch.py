"""Cross-stitch networks (Misra et al., "Cross-stitch Networks for Multi-task Learning",
CVPR 2016).

One network per task, and after every trunk layer l a learned T×T matrix α^l mixes the
tasks' activations:  h̃_t^l = Σ_s α^l_{ts} h_s^l  (the paper's per-layer "cross-stitch
unit"; one scalar per task pair and layer). α^l starts at ``stitch_self`` = 0.9 on the
diagonal and (1 − 0.9)/(T − 1) off it, so each row sums to 1; for T = 2 this is the
paper's (0.9, 0.1) initialisation (its best setting, §4.3); T = 1 gives α = [[1]].

Where parameters live: the stacked networks ``[T, ...]`` and the α's are θ^sh
(``params["shared"]["layer_l"] = {"net": [T, ...], "alpha": [T, T]}``): through α every
task's output depends on every network, so per-task gradient methods must see them as
shared. θ^i is the task's linear head.

Cost: cross-stitching couples all tasks' activations, so each sampled task's forward pass
(``apply_task``) runs all T stacked networks on that task's inputs (``jax.vmap`` over the
network stack, no Python loop over T) and keeps row ``task_id`` after the last layer:
T× the FLOPs of one network per sampled task, O(K·T) network passes per step.
"""

import jax
import jax.numpy as jnp
import numpy as np

from mtl_jax.models import _trunk, register
from mtl_jax.models.base import MultiTaskModel
from mtl_jax.models.layers import Head, init_stack


def stitch_init(num_tasks: int, self_weight: float = 0.9) -> np.ndarray:
  """α₀: ``self_weight`` on the diagonal, the rest of each row spread evenly."""
  if num_tasks == 1:
    return np.ones((1, 1), np.float32)
  off = (1.0 - self_weight) / (num_tasks - 1)
  a = np.full((num_tasks, num_tasks), off, np.float32)
  np.fill_diagonal(a, self_weight)
  return a


class CrossStitchNet(MultiTaskModel):
  """T stacked trunks, cross-stitched after every layer, plus per-task heads.

  ``layers``: one trunk (linen modules ``h -> h'``), copied once per task;
  ``stitch_self``: the diagonal of every α at init (default: the ``cross_stitch`` builder).
  """

  def __init__(
    self,
    layers,
    num_tasks: int,
    output_size: int,
    *,
    stitch_self: float,
    name: str = "cross_stitch",
  ):
    super().__init__(num_tasks, output_size, name=name)
    self.layers = list(layers)
    self.head = Head(output_size)
    self.stitch_self = stitch_self

  def init(self, rng: jax.Array, x: jax.Array) -> dict:
    t = self.num_tasks
    keys = jax.random.split(rng, len(self.layers) + 1)
    alpha = jnp.asarray(stitch_init(t, self.stitch_self))
    shared = {}
    h = x
    for i, (layer, key) in enumerate(zip(self.layers, keys)):
      net = init_stack(layer, key, t, h)
      shared[f"layer_{i}"] = {"net": net, "alpha": alpha}
      h = layer.apply({"params": jax.tree.map(lambda p: p[0], net)}, h)
    tasks = {"head": init_stack(self.head, keys[-1], t, h)}
    return {"shared": shared, "tasks": tasks}

  def apply_task(self, shared: dict, task: dict, task_id: jax.Array, x: jax.Array) -> jax.Array:
    h_T = jnp.broadcast_to(x, (self.num_tasks,) + x.shape)
    last = len(self.layers) - 1
    for i, layer in enumerate(self.layers):
      p = shared[f"layer_{i}"]
      h_T = jax.vmap(lambda q, h, layer=layer: layer.apply({"params": q}, h))(p["net"], h_T)
      if i < last:
        h_T = jnp.tensordot(p["alpha"], h_T, axes=1)  # [T, T] · [T, B, ...]
      else:
        h = jnp.tensordot(p["alpha"][task_id], h_T, axes=1)  # only row task_id is needed
    return self.head.apply({"params": task["head"]}, h)

  def last_shared_path(self) -> tuple[str, ...]:
    """The last layer's stacked networks and cross-stitch unit."""
    return (f"layer_{len(self.layers) - 1}",)


@register("cross_stitch")
def cross_stitch(
  *, num_tasks, output_size, input_shape=None, trunk="mlp", width=64, depth=2, stitch_self=0.9
):
  """One trunk per task, mixed by a learned T×T cross-stitch unit after every layer.

  model_kwargs: trunk (mlp|conv), width, depth, stitch_self (α diagonal at init, 0.9).
  """
  del input_shape
  return CrossStitchNet(
    _trunk(trunk, width, depth), num_tasks, output_size, stitch_self=stitch_self
  )
