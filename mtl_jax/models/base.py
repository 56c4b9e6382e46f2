"""The multi-task network: θ^sh (shared) and θ^{1..T} (task-specific, stacked).

``params = {"shared": θ^sh, "tasks": θ^{1..T}}``: every leaf under ``"tasks"`` has a
leading task axis T, made by ``jax.vmap(layer.init)`` over T split keys. A batch of K
tasks gathers its rows (``tree.map(lambda p: p[task_ids])``) and the per-task forward pass
is vmapped over them; the gradient flows back to the stack by the gather's scatter-add.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mtl_jax.models.layers import Head, init_stack


def gather_tasks(task_params, task_ids):
  """Rows ``task_ids [K]`` of every stacked leaf: ``[T, ...] -> [K, ...]``."""
  return jax.tree.map(lambda p: p[task_ids], task_params)


class MultiTaskNet:
  """A trunk of layers whose first ``num_shared`` are shared, plus one head per task.

  ``num_shared = len(layers)`` is hard parameter sharing (shared trunk, multi-head);
  ``num_shared = 0`` is the independent baseline (a whole network per task) on the same
  stacked code path; anything between shares the first k layers (the "what to share" dial).

  Subclasses change :meth:`init` / :meth:`apply_task` (conditioning, experts, ...) and may
  override :meth:`regularizer` (a penalty added to the training loss, e.g. soft sharing).
  """

  def __init__(
    self,
    layers: Sequence[nn.Module],
    num_tasks: int,
    output_size: int,
    num_shared: int | None = None,
    name: str = "net",
  ):
    self.layers = list(layers)
    self.head = Head(output_size)
    self.num_tasks = num_tasks
    self.output_size = output_size
    self.num_shared = len(self.layers) if num_shared is None else num_shared
    self.name = name
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

  def represent(self, shared: dict, x: jax.Array) -> jax.Array:
    """The shared representation Z: ``x`` through the ``num_shared`` shared layers."""
    h = x
    for i in range(self.num_shared):
      h = self.layers[i].apply({"params": shared[f"layer_{i}"]}, h)
    return h

  def apply_from_representation(self, task: dict, z: jax.Array) -> jax.Array:
    """The task-specific rest of :meth:`apply_task`, from the shared representation."""
    h = z
    for i in range(self.num_shared, len(self.layers)):
      h = self.layers[i].apply({"params": task[f"layer_{i}"]}, h)
    return self.head.apply({"params": task["head"]}, h)

  def has_representation_split(self) -> bool:
    """True when :meth:`apply_task` is ``represent`` then ``apply_from_representation``."""
    return type(self).apply_task is MultiTaskNet.apply_task and self.num_shared > 0

  def apply(self, params: dict, x: jax.Array, task_ids: jax.Array) -> jax.Array:
    """Outputs ``[K, B, output_size]`` for inputs ``x [K, B, ...]`` of tasks ``task_ids [K]``."""
    task_k = gather_tasks(params["tasks"], task_ids)
    return jax.vmap(self.apply_task, in_axes=(None, 0, 0, 0))(params["shared"], task_k, task_ids, x)

  def regularizer(self, params: dict) -> jax.Array:
    """Extra training penalty; 0 for plain sharing."""
    del params
    return jnp.zeros(())

  def last_shared_path(self) -> tuple[str, ...] | None:
    """Key path under ``params["shared"]`` of the last shared layer (GradNorm's W)."""
    if self.num_shared == 0:
      return None
    return (f"layer_{self.num_shared - 1}",)
