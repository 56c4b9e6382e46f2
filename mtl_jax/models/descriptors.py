"""Task descriptors z_i: what a conditioned network is told about the task (CS330 lec. 2).

Three kinds, chosen by the config option ``descriptor``:

* ``"onehot"``: z_i = e_i ∈ {0, 1}^T, the task index (no parameters).
* ``"embedding"``: z_i = E[i], a learned ``[T, embed_dim]`` table (``flax.linen.Embed``).
  The table lives in θ^sh under ``params["shared"]["task_embedding"]``: one array whose
  row i only task i's loss touches, kept whole so a conditioned model's trunk and its
  descriptor sit together (gradients reach row i by the gather's scatter-add).
* ``"metadata"``: z_i = the task set's ``descriptors[i]`` (a user-supplied vector per task,
  e.g. the sinusoid set's (log A_i, φ_i)), a constant. By default each column is
  standardised over tasks (zero mean, unit std; constant columns left at 0) so that the
  metadata's units do not set the conditioning's scale.

Conventions: ``z = descriptor(params["shared"], task_id)`` for a scalar (traced) task id
returns ``z [d]``; it is called inside the per-task forward pass, which is vmapped over the
sampled tasks, so there is no Python loop over tasks.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

KINDS = ("onehot", "embedding", "metadata")
PARAM_KEY = "task_embedding"


class TaskDescriptor:
  """z_i for task i: one-hot, a learned embedding, or fixed metadata.

  Args:
    kind: one of :data:`KINDS`.
    num_tasks: T.
    embed_dim: d, required for ``"embedding"`` (unused otherwise).
    metadata: ``[T, d]`` array, required for ``"metadata"`` (the task set's ``descriptors``).
    standardize: standardise metadata columns over tasks; required for ``"metadata"``.

  The defaults of ``embed_dim`` and ``standardize`` are the conditioned models' builders'
  (``embed_dim``, ``standardize_descriptors``).
  """

  def __init__(
    self,
    kind: str,
    num_tasks: int,
    embed_dim: int | None = None,
    metadata: np.ndarray | None = None,
    standardize: bool | None = None,
  ):
    if kind not in KINDS:
      raise ValueError(f"unknown descriptor {kind!r}; valid: {', '.join(KINDS)}")
    self.kind = kind
    self.num_tasks = num_tasks
    self.embed = None
    self.metadata = None
    if kind == "onehot":
      self.dim = num_tasks
    elif kind == "embedding":
      if embed_dim is None:
        raise ValueError("descriptor='embedding' needs embed_dim")
      if embed_dim < 1:
        raise ValueError(f"embed_dim must be >= 1, got {embed_dim}")
      self.dim = embed_dim
      self.embed = nn.Embed(num_tasks, embed_dim, embedding_init=nn.initializers.normal(1.0))
    else:
      if metadata is None:
        raise ValueError(
          "descriptor='metadata' needs a task set with per-task descriptors "
          "(e.g. taskset='sinusoid'); this one has none — use 'onehot' or "
          "'embedding'"
        )
      if standardize is None:
        raise ValueError("descriptor='metadata' needs standardize (True or False)")
      meta = np.asarray(metadata, np.float32).reshape(num_tasks, -1)
      if standardize:
        std = meta.std(0)
        meta = (meta - meta.mean(0)) / np.where(std > 0, std, 1.0)
      self.metadata = meta
      self.dim = meta.shape[1]

  def init(self, rng: jax.Array) -> dict:
    """Parameters to merge into θ^sh (empty unless ``kind == "embedding"``)."""
    if self.embed is None:
      return {}
    return {PARAM_KEY: self.embed.init(rng, jnp.zeros((), jnp.int32))["params"]}

  def __call__(self, shared: dict, task_id: jax.Array) -> jax.Array:
    """z for one task id (scalar, may be traced): ``[dim]``."""
    if self.kind == "onehot":
      return jax.nn.one_hot(task_id, self.num_tasks)
    if self.kind == "embedding":
      return self.embed.apply({"params": shared[PARAM_KEY]}, task_id)
    return jnp.asarray(self.metadata)[task_id]
