"""The interface every multi-task model implements: what the training code relies on.

``params = {"shared": θ^sh, "tasks": θ^{1..T}}``: every leaf under ``"tasks"`` has a
leading task axis T (typically made by ``jax.vmap(module.init)`` over T split keys, see
:func:`mtl_jax.models.layers.init_stack`). A batch of K tasks gathers its rows
(:func:`gather_tasks`) and the per-task forward pass :meth:`MultiTaskModel.apply_task` is
vmapped over them; the gradient flows back to the stack by the gather's scatter-add.

Implementations: :class:`mtl_jax.models.layer_split.LayerSplitNet` (a trunk whose first k
layers are shared: hard sharing, split, independent, soft sharing), the mixture-of-experts
models (MMoE, DSelect-k, CGC, PLE), cross-stitch networks and task-conditioned networks.
"""

import abc

import jax
import jax.numpy as jnp


def gather_tasks(task_params, task_ids):
  """Rows ``task_ids [K]`` of every stacked leaf: ``[T, ...] -> [K, ...]``."""
  return jax.tree.map(lambda p: p[task_ids], task_params)


class MultiTaskModel(abc.ABC):
  """A model of T tasks with shared parameters θ^sh and task-stacked parameters θ^{1..T}.

  Attributes:
    num_tasks: T, the length of the leading axis of every leaf of ``params["tasks"]``.
    output_size: width of every task's (padded) output vector.
    name: the model's name (the registered name it was built under).

  Implement :meth:`init` and :meth:`apply_task`; override :meth:`regularizer` (a penalty
  added to the training loss), :meth:`last_shared_path` (for GradNorm) and the
  representation split (:meth:`has_representation_split`, :meth:`represent`,
  :meth:`apply_from_representation`; for gradients w.r.t. a shared representation) where
  they apply.
  """

  def __init__(self, num_tasks: int, output_size: int, *, name: str):
    self.num_tasks = num_tasks
    self.output_size = output_size
    self.name = name

  @abc.abstractmethod
  def init(self, rng: jax.Array, x: jax.Array) -> dict:
    """``{"shared": θ^sh, "tasks": θ^{1..T}}`` from one example batch ``x [B, ...]``."""

  @abc.abstractmethod
  def apply_task(self, shared: dict, task: dict, task_id: jax.Array, x: jax.Array) -> jax.Array:
    """One task's forward pass: ``x [B, ...] -> outputs [B, output_size]``.

    ``task`` is that task's row of ``params["tasks"]`` and ``task_id`` its (traced, scalar)
    index; this is vmapped over the sampled tasks by :meth:`apply`.
    """

  def apply(self, params: dict, x: jax.Array, task_ids: jax.Array) -> jax.Array:
    """Outputs ``[K, B, output_size]`` for inputs ``x [K, B, ...]`` of tasks ``task_ids [K]``."""
    task_k = gather_tasks(params["tasks"], task_ids)
    return jax.vmap(self.apply_task, in_axes=(None, 0, 0, 0))(params["shared"], task_k, task_ids, x)

  def regularizer(self, params: dict) -> jax.Array:
    """Extra training penalty added to the loss; 0 unless a model defines one."""
    del params
    return jnp.zeros(())

  def last_shared_path(self) -> tuple[str, ...] | None:
    """Key path under ``params["shared"]`` of the last shared layer (GradNorm's W).

    None when the model has no such layer (nothing shared).
    """
    return None

  # --- optional: the task outputs as per-task functions of one shared representation ----
  def has_representation_split(self) -> bool:
    """True when ``apply_task(shared, task, i, x)`` equals
    ``apply_from_representation(task, represent(shared, x))``."""
    return False

  def represent(self, shared: dict, x: jax.Array) -> jax.Array:
    """The shared representation Z of ``x [B, ...]`` (only with a representation split)."""
    del shared, x
    raise self._no_representation_split("represent")

  def apply_from_representation(self, task: dict, z: jax.Array) -> jax.Array:
    """The task-specific rest of :meth:`apply_task`, from the shared representation ``z``."""
    del task, z
    raise self._no_representation_split("apply_from_representation")

  def _no_representation_split(self, method: str) -> ValueError:
    return ValueError(
      f"model {self.name!r} ({type(self).__name__}) has no shared-representation split "
      f"(has_representation_split() is False), so {method}() is not available: its task "
      "outputs are not per-task functions of one shared representation; use a model with "
      "a shared trunk (e.g. hard_sharing or split with num_shared > 0)"
    )


def __getattr__(name: str):
  # Backward compatibility: ``mtl_jax.models.base.MultiTaskNet`` was the layer-split
  # implementation, now :class:`mtl_jax.models.layer_split.LayerSplitNet` (imported lazily:
  # that module builds on this one).
  if name == "MultiTaskNet":
    from mtl_jax.models.layer_split import LayerSplitNet

    return LayerSplitNet
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
