"""Layer-split networks: a trunk whose first k layers are shared, then one head per task.

The "what to share" dial (CS330 lec. 2) on one stacked code path: ``num_shared = k`` puts
trunk layers ``0..k-1`` in θ^sh (``params["shared"]["layer_i"]``) and layers ``k..`` plus a
linear head in θ^i (``params["tasks"]["layer_i"]``, ``params["tasks"]["head"]``, stacked on
the task axis). k = number of layers is hard parameter sharing (shared trunk, multi-head),
k = 0 the independent baseline (a whole network per task). The registered ``hard_sharing``,
``split``, ``independent`` and ``soft_sharing`` models are instances of :class:`LayerSplitNet`.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax

from mtl_jax.models.base import MultiTaskModel
from mtl_jax.models.layers import Head, init_stack


class LayerSplitNet(MultiTaskModel):
  """A trunk of layers whose first ``num_shared`` are shared, plus one head per task.

  Args:
    layers: the trunk, linen modules ``h -> h'`` applied in order.
    num_tasks: T.
    output_size: width of each task's linear head.
    num_shared: how many leading trunk layers are shared; None shares all of them.
    name: the model's name.

  With ``num_shared > 0`` the shared layers' output is the shared representation Z
  (:meth:`represent`) and the rest is per task (:meth:`apply_from_representation`).
  Subclasses may override :meth:`regularizer` (e.g. soft sharing's penalty).
  """

  def __init__(
    self,
    layers: Sequence[nn.Module],
    num_tasks: int,
    output_size: int,
    *,
    num_shared: int | None,
    name: str,
  ):
    super().__init__(num_tasks, output_size, name=name)
    self.layers = list(layers)
    self.head = Head(output_size)
    self.num_shared = len(self.layers) if num_shared is None else num_shared
    if not 0 <= self.num_shared <= len(self.layers):
      raise ValueError(
        f"num_shared must be in [0, {len(self.layers)}] (number of trunk "
        f"layers), got {self.num_shared}"
      )

  def init(self, rng: jax.Array, x: jax.Array) -> dict:
    """Initialises ``{"shared", "tasks"}`` from one example batch ``x [B, ...]``."""
    shared, tasks = {}, {}
    keys = jax.random.split(rng, len(self.layers) + 1)
    h = x
    for i, (layer, key) in enumerate(zip(self.layers, keys)):
      name = f"layer_{i}"
      if i < self.num_shared:
        shared[name] = layer.init(key, h)["params"]
      else:
        tasks[name] = init_stack(layer, key, self.num_tasks, h)
      h = layer.apply({"params": self._first(shared, tasks, name)}, h)
    tasks["head"] = init_stack(self.head, keys[-1], self.num_tasks, h)
    return {"shared": shared, "tasks": tasks}

  @staticmethod
  def _first(shared, tasks, name):
    if name in shared:
      return shared[name]
    return jax.tree.map(lambda p: p[0], tasks[name])

  def apply_task(self, shared: dict, task: dict, task_id: jax.Array, x: jax.Array) -> jax.Array:
    """One task's forward pass: ``x [B, ...] -> outputs [B, output_size]``."""
    del task_id
    h = x
    for i, layer in enumerate(self.layers):
      name = f"layer_{i}"
      p = shared[name] if name in shared else task[name]
      h = layer.apply({"params": p}, h)
    return self.head.apply({"params": task["head"]}, h)

  def has_representation_split(self) -> bool:
    """True when some layers are shared and :meth:`apply_task` is not overridden."""
    return type(self).apply_task is LayerSplitNet.apply_task and self.num_shared > 0

  def represent(self, shared: dict, x: jax.Array) -> jax.Array:
    """The shared representation Z: ``x`` through the ``num_shared`` shared layers."""
    if not self.has_representation_split():
      return super().represent(shared, x)
    h = x
    for i in range(self.num_shared):
      h = self.layers[i].apply({"params": shared[f"layer_{i}"]}, h)
    return h

  def apply_from_representation(self, task: dict, z: jax.Array) -> jax.Array:
    """The task-specific rest of :meth:`apply_task`, from the shared representation."""
    if not self.has_representation_split():
      return super().apply_from_representation(task, z)
    h = z
    for i in range(self.num_shared, len(self.layers)):
      h = self.layers[i].apply({"params": task[f"layer_{i}"]}, h)
    return self.head.apply({"params": task["head"]}, h)

  def last_shared_path(self) -> tuple[str, ...] | None:
    """``("layer_{num_shared-1}",)``, or None when nothing is shared."""
    if self.num_shared == 0:
      return None
    return (f"layer_{self.num_shared - 1}",)
