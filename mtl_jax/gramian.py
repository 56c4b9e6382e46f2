"""The Gramian path of an aggregator step: G = J Jᵀ without holding the ``[K, P]`` Jacobian.

Many aggregators only look at the task gradients through their Gramian: the weights are
``w = f(G, state)`` and the update is ``Σ_k w_k g_k = Jᵀ w`` (upgrad, dualproj, mgda,
imtl_g, cagrad, nash_mtl, aligned_mtl: :data:`GRAMIAN_METHODS`). For them the train step
never needs J itself, whose K × |θ^sh| entries dominate the step's memory when the trunk
is wide:

1. ``jax.linearize`` the K task losses in θ^sh once (the residuals of one forward pass);
2. for each task k in turn (``lax.map``): its own gradient ``g_k`` (a backward pass of
   L_k alone, which also gives its head's gradient), then ``J g_k`` (one JVP through the
   stored linearisation) = column k of G; only one ``g_k`` (|θ^sh| entries) lives at a time;
3. the weights ``w`` from G (:func:`gramian_weights`);
4. ``Jᵀ w`` by transposing the linearisation: one backward pass of Σ_k w_k L_k.

Peak memory is that of a plain step plus a few |θ^sh| vectors, whatever K; the price is
K single-task backward passes and K JVPs over the K tasks (O(K²) task passes when every
task has its own inputs). :func:`use_gramian` picks this path automatically when the
Jacobian would hold at least :data:`AUTO_MIN_ELEMENTS` entries; the ``gramian`` option of
every aggregator (``"auto"``, ``"always"``, ``"never"``) overrides it.
"""

import jax
import jax.numpy as jnp

from mtl_jax.data.sampling import TaskBatch
from mtl_jax.gradients import Objective, one_task_loss, sampled_losses
from mtl_jax.models.base import gather_tasks

# Aggregators whose update is Σ_k w_k g_k with w a function of G = J Jᵀ (and their state).
GRAMIAN_METHODS = frozenset(
  {"upgrad", "dualproj", "mgda", "imtl_g", "cagrad", "nash_mtl", "aligned_mtl"}
)
# "auto" takes the Gramian path once K × |θ^sh| reaches this (2^26 float32 = 256 MiB).
AUTO_MIN_ELEMENTS = 2**26
CHOICES = ("auto", "always", "never")


def check_choice(name: str, gramian: str, rep_grad: bool) -> None:
  """Raises ``ValueError`` for a ``gramian`` option that method ``name`` cannot honour."""
  if gramian not in CHOICES:
    raise ValueError(
      f"method {name!r}: gramian must be one of {', '.join(CHOICES)}, got {gramian!r}"
    )
  if gramian != "always":
    return
  if name not in GRAMIAN_METHODS:
    raise ValueError(
      f"method {name!r} with gramian='always': only aggregators whose weights depend on the "
      f"task gradients through their Gramian take that path ({', '.join(sorted(GRAMIAN_METHODS))})"
    )
  if rep_grad:
    raise ValueError(
      f"method {name!r}: gramian='always' and rep_grad=True exclude each other (rep_grad "
      "aggregates the small ∂L/∂Z rows, whose Jacobian is already cheap)"
    )


def use_gramian(name: str, gramian: str, num_rows: int, shared_params) -> bool:
  """Whether a step of method ``name`` takes the Gramian path (decided from static shapes)."""
  if gramian == "never" or name not in GRAMIAN_METHODS:
    return False
  size = sum(x.size for x in jax.tree.leaves(shared_params))
  if size == 0:
    return False
  return gramian == "always" or num_rows * size >= AUTO_MIN_ELEMENTS


def gramian_task_grads(obj: Objective, params, batch: TaskBatch, chunk: int = 1):
  """The Gramian of the K task gradients of θ^sh, computed one task at a time.

  Args:
    chunk: tasks whose gradients are held at once (``lax.map``'s ``batch_size``).

  Returns:
    ``(losses [K], gram [K, K] float32, g_tasks, shared_vjp)``: ``g_tasks`` is each task's
    gradient of its own gathered θ^k (``[K, ...]``); ``shared_vjp(w [K])`` is ``Σ_k w_k g_k``
    (θ^sh's structure), one transposed pass through the stored linearisation.
  """
  task_k = gather_tasks(params["tasks"], batch.task)
  losses, f_jvp = jax.linearize(lambda s: sampled_losses(obj, s, task_k, batch), params["shared"])
  f_vjp = jax.linear_transpose(f_jvp, params["shared"])
  grad_fn = jax.grad(lambda s, p, i, x, y: one_task_loss(obj, s, p, i, x, y), (0, 1))

  def column(k):
    p_k = jax.tree.map(lambda leaf: leaf[k], task_k)
    x_k = batch.x[0] if obj.shared_inputs else batch.x[k]
    g_sh, g_task = grad_fn(params["shared"], p_k, batch.task[k], x_k, batch.y[k])
    return f_jvp(g_sh).astype(jnp.float32), g_task  # J g_k: row (= column) k of G

  cols, g_task = jax.lax.map(column, jnp.arange(losses.shape[0]), batch_size=chunk)
  gram = 0.5 * (cols + cols.T)
  return losses, gram, g_task, lambda w: f_vjp(w.astype(losses.dtype))[0]


def gramian_weights(agg, gram, state, **extra):
  """``(w [K], state)``: the weights ``agg`` gives rows whose Gramian is ``gram``.

  The aggregator runs on K surrogate rows ``R = V √Λ`` (``gram = V Λ Vᵀ``), which have the
  same Gramian as the task gradients, so a Gramian-only aggregator returns ``Rᵀ w`` with
  the same ``w`` (and updates its state as it would); ``w`` is read back through ``R``'s
  pseudo-inverse. Directions with eigenvalue ≤ K·eps·λ_max are dropped: there ``Jᵀ v`` is
  zero up to rounding, so ``Jᵀ w`` is unchanged.
  """
  gram = gram.astype(jnp.float32)
  lam, v = jnp.linalg.eigh(gram)
  lam = jnp.maximum(lam, 0.0)
  root = jnp.sqrt(lam)
  update, state = agg.update(v * root[None, :], state, None, **extra)
  keep = lam > gram.shape[0] * jnp.finfo(gram.dtype).eps * jnp.max(lam)
  coef = jnp.where(keep, update.astype(gram.dtype) / jnp.where(keep, root, 1.0), 0.0)
  return v @ coef, state
