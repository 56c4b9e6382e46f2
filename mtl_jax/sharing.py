"""What to share: θ^sh / θ^i split and merge, parameter counts, soft-sharing penalty.

Parameters are ``{"shared": θ^sh, "tasks": θ^{1..T}}`` with a leading task axis T on every
leaf under ``"tasks"`` (see :mod:`mtl_jax.models.base`).

**The sharing dial** (CS330 lec. 2, "what to share"): ``hard_sharing`` with
``model_kwargs.num_shared = k`` shares the first k trunk layers; k = 0 is the
independent baseline, k = depth is hard sharing. :func:`to_shared` / :func:`to_tasks`
move named layers across the split (tying per-task copies by their mean, or untying a
shared layer into T identical copies), so a model at one dial setting can be started
from another's parameters.

**Soft parameter sharing** (Duong et al., ACL 2015; Yang & Hospedales, ICLR-W 2017): every
task keeps its own parameters and a penalty pulls them together. With θ^t the flattened
vector of task t's (penalised) parameters, :func:`soft_sharing_penalty` is

* ``"l2"`` (default):  λ Σ_{t<t'} ‖θ^t − θ^{t'}‖₂
* ``"squared"``:       λ Σ_{t<t'} ‖θ^t − θ^{t'}‖₂²
* ``"mean"``:          λ Σ_t ‖θ^t − θ̄‖₂,  θ̄ = (1/T) Σ_t θ^t (distance to the mean network)

computed without a loop over task pairs from the Gram matrix of the task-centred [T, P]
matrix (‖a − b‖² = ‖a‖² + ‖b‖² − 2a·b; centring first cuts the cancellation error and
leaves distances unchanged), clamped at 0; the square root's gradient is 0 where a
distance is exactly 0 (a finite subgradient) instead of NaN.
"""

import jax
import jax.numpy as jnp

NORMS = ("l2", "squared", "mean")


def split_params(params: dict) -> tuple[dict, dict]:
  """``{"shared", "tasks"} -> (θ^sh, θ^{1..T})``."""
  return params["shared"], params["tasks"]


def merge_params(shared: dict, tasks: dict) -> dict:
  """``(θ^sh, θ^{1..T}) -> {"shared", "tasks"}``."""
  return {"shared": shared, "tasks": tasks}


def _size(tree) -> int:
  return int(sum(x.size for x in jax.tree.leaves(tree)))


def count_params(params: dict) -> dict[str, int]:
  """``{"shared", "task_specific", "total", "per_task"}`` parameter counts.

  ``per_task`` is the task-specific count of one task (``task_specific / T``).
  """
  shared, tasks = split_params(params)
  n_sh, n_t = _size(shared), _size(tasks)
  leaves = jax.tree.leaves(tasks)
  t = leaves[0].shape[0] if leaves else 1
  return {"shared": n_sh, "task_specific": n_t, "total": n_sh + n_t, "per_task": n_t // t}


def to_shared(params: dict, keys, reduce: str = "mean") -> dict:
  """Moves ``params["tasks"][key]`` (for each key) to θ^sh, tying the T copies.

  ``reduce="mean"`` averages the copies, ``"first"`` keeps task 0's.
  """
  shared, tasks = dict(params["shared"]), dict(params["tasks"])
  for key in keys:
    stack = tasks.pop(key)
    shared[key] = jax.tree.map(lambda p: p.mean(0) if reduce == "mean" else p[0], stack)
  return merge_params(shared, tasks)


def to_tasks(params: dict, keys, num_tasks: int) -> dict:
  """Moves ``params["shared"][key]`` to the task stack as T identical copies."""
  shared, tasks = dict(params["shared"]), dict(params["tasks"])
  for key in keys:
    tasks[key] = jax.tree.map(
      lambda p: jnp.broadcast_to(p, (num_tasks,) + p.shape), shared.pop(key)
    )
  return merge_params(shared, tasks)


def flatten_tasks(task_params) -> jax.Array:
  """Stacked per-task pytree → ``[T, P]`` matrix (one row per task's flattened params)."""
  leaves = jax.tree.leaves(task_params)
  t = leaves[0].shape[0]
  return jnp.concatenate([x.reshape(t, -1).astype(jnp.float32) for x in leaves], 1)


def _centred(task_params) -> jax.Array:
  x_TxP = flatten_tasks(task_params)
  # The mean over tasks as a matmul: XLA's CPU backend runs a reduction along axis 0 of a
  # wide [T, P] ~100x slower. HIGHEST keeps accelerators from rounding it to bf16/tf32.
  t = x_TxP.shape[0]
  mean_P = jnp.dot(jnp.full((t,), 1.0 / t, x_TxP.dtype), x_TxP, precision=jax.lax.Precision.HIGHEST)
  return x_TxP - mean_P[None]


def pairwise_sq_distances(task_params) -> jax.Array:
  """``[T, T]`` squared distances ‖θ^t − θ^{t'}‖² via the Gram matrix (clamped at 0)."""
  x_TxP = _centred(task_params)
  g_TxT = x_TxP @ x_TxP.T
  sq = jnp.diag(g_TxT)
  return jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * g_TxT, 0.0)


def _safe_sqrt(x):
  pos = x > 0
  return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.0)), 0.0)


def pairwise_distances(task_params) -> jax.Array:
  """``[T, T]`` distances ‖θ^t − θ^{t'}‖ (finite gradient where a distance is 0)."""
  return _safe_sqrt(pairwise_sq_distances(task_params))


def soft_sharing_penalty(task_params, lam: float = 1e-3, norm: str = "l2") -> jax.Array:
  """λ × (sum of pairwise / to-the-mean distances) over stacked per-task params.

  Args:
    task_params: pytree whose leaves have a leading task axis T.
    lam: λ ≥ 0.
    norm: ``"l2"`` (Σ_{t<t'} ‖·‖), ``"squared"`` (Σ_{t<t'} ‖·‖²) or ``"mean"``
      (Σ_t ‖θ^t − θ̄‖).

  Returns:
    The scalar penalty (float32).
  """
  if norm not in NORMS:
    raise ValueError(f"unknown soft_norm {norm!r}; valid: {', '.join(NORMS)}")
  if not jax.tree.leaves(task_params):
    return jnp.zeros(())
  if norm == "mean":
    x_TxP = _centred(task_params)
    return lam * jnp.sum(_safe_sqrt(jnp.sum(jnp.square(x_TxP), 1)))
  d2_TxT = pairwise_sq_distances(task_params)
  upper = jnp.triu(jnp.ones_like(d2_TxT), k=1)
  d_TxT = d2_TxT if norm == "squared" else _safe_sqrt(d2_TxT)
  return lam * jnp.sum(upper * d_TxT)
