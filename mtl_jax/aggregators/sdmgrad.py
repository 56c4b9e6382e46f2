"""``sdmgrad``: stochastic direction-oriented multi-objective gradient (Xiao et al., 2023)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mtl_jax.aggregators._base import Aggregator, flatten_tasks, register, task_rows
from mtl_jax.aggregators._solvers import project_simplex, task_gramian, weighted_rows


class SDMGradState(NamedTuple):
  """Per task id, with a leading ``max_tasks`` axis."""

  w: jax.Array  # [max_tasks] weights (renormalised over the sampled tasks when read)


def on_simplex(w_K: jax.Array) -> jax.Array:
  """``w / Σw``, or uniform when the rows hold no mass (first read, or all zero)."""
  total = jnp.sum(w_K)
  return jnp.where(total > 0, w_K / jnp.where(total > 0, total, 1.0), 1.0 / w_K.shape[0])


def scaled_gramian(g_KxP: jax.Array, normalize: bool) -> jax.Array:
  """``g gᵀ``, divided by the squared mean gradient norm when ``normalize`` (0 stays 0)."""
  gram = task_gramian(g_KxP)
  if not normalize:
    return gram
  scale = jnp.mean(jnp.sqrt(jnp.maximum(jnp.diagonal(gram), 0.0))) ** 2
  return gram / jnp.where(scale > 0, scale, 1.0)


def weight_steps(w_K, gram_KxK, lamda, niter, step_size, momentum):
  """``niter`` projected (heavy-ball) gradient steps on ½‖gᵀw + λ g₀‖² over the simplex.

  The gradient in w is ``G w + λ G 1/K`` (G the Gramian, g₀ the mean row). The momentum
  buffer starts at zero on every call; ``momentum=0`` gives plain projected steps.
  """
  gram = gram_KxK.astype(w_K.dtype)
  b_K = jnp.mean(gram, axis=1)  # G g₀ in Gramian form: the dot products g_i · g₀

  def body(_, carry):
    w, buf = carry
    buf = momentum * buf + gram @ w + lamda * b_K
    return project_simplex(w - step_size * buf), buf

  w, _ = jax.lax.fori_loop(0, niter, body, (on_simplex(w_K), jnp.zeros_like(w_K)))
  return w


@register("sdmgrad")
def sdmgrad(
  lamda: float = 0.3,
  niter: int = 20,
  step_size: float = 5.0,
  momentum: float = 0.5,
  scale_gramian: bool = True,
  max_tasks: int = 64,
) -> Aggregator:
  """SDMGrad: Xiao, Ban & Ji, "Direction-oriented Multi-objective Learning: Simple and
  Provable Stochastic Algorithms", NeurIPS 2023.

  The common direction is kept near the mean gradient g₀ by a regulariser of weight λ:
  w minimises ½‖Σ_i w_i g_i + λ g₀‖² over the simplex Δ, update d = (Σ_i w_i g_i + λ g₀) /
  (1 + λ). w is refined by ``niter`` projected gradient steps per update (the paper's
  Algorithm 1), warm-started from the previous update's w (as LibMTL's ``SDMGrad`` and the
  authors' NYU-v2 code).

  Conventions and differences:
    * Scale: mean-like (d is a convex combination of the g_i). λ = 0 is stochastic MGDA
      (w → min-norm weights as the steps converge); λ → ∞ gives the mean. Identical
      gradients and T = 1 give g.
    * Single sample: the paper draws three independent gradient samples a step (two for the
      w-step's G_ξ G_ξ'ᵀ, a third for d), which makes the w-step unbiased. An aggregator gets
      one gradient per task, so all three are the same G here: the w-step then minimises
      the squared norm of the sampled gradients, noise included. (The authors' NYU-v2
      trainer allocates its three buffers as one aliased tensor, so it also uses one.)
    * Solver as LibMTL and the authors' code: the Gramian is divided by the squared mean
      gradient norm (``scale_gramian``; the step size is then unit-free), steps use heavy-ball
      momentum restarted every update; ``momentum=0, scale_gramian=False`` is the paper's
      plain projected step on raw gradients. No gradient clipping (the authors clip to 1).
    * State per task id (``max_tasks``, filled with T by the train step): w, read and
      written at ``task_ids``; the sampled rows are renormalised onto Δ first (K < T).
    * Extras: ``task_ids``.

  Args:
    lamda: regularisation λ ≥ 0 toward g₀ (spelled as LibMTL's ``SDMGrad_lamda``).
    niter: projected gradient steps on w per update (≥ 1).
    step_size: step size > 0 of those steps (LibMTL: 5 on the normalised Gramian).
    momentum: heavy-ball momentum in [0, 1) of those steps (LibMTL: 0.5).
    scale_gramian: divide the Gramian by the squared mean gradient norm.
    max_tasks: number of task ids the state holds.

  Returns:
    An aggregator with state :class:`SDMGradState` (w starts uniform).
  """
  if not lamda >= 0.0:
    raise ValueError(f"sdmgrad lamda must be >= 0, got {lamda}")
  if not (isinstance(niter, int) and niter >= 1):
    raise ValueError(f"sdmgrad niter must be an int >= 1, got {niter!r}")
  if not step_size > 0.0:
    raise ValueError(f"sdmgrad step_size must be > 0, got {step_size}")
  if not 0.0 <= momentum < 1.0:
    raise ValueError(f"sdmgrad momentum must be in [0, 1), got {momentum}")
  if not (isinstance(max_tasks, int) and max_tasks >= 1):
    raise ValueError(f"sdmgrad max_tasks must be an int >= 1, got {max_tasks!r}")

  def init(params):
    dtype = jnp.promote_types(jnp.result_type(*jax.tree.leaves(params), jnp.float32), jnp.float32)
    return SDMGradState(w=jnp.ones((max_tasks,), dtype))

  def update(per_task_grads, state, params=None, task_ids=None, **extra):
    del params, extra
    g_KxP, unflatten = flatten_tasks(per_task_grads)
    k = g_KxP.shape[0]
    ids = task_rows("sdmgrad", k, task_ids, max_tasks)
    gram = scaled_gramian(g_KxP, scale_gramian)
    w = weight_steps(state.w[ids], gram, lamda, niter, step_size, momentum)
    # d = (Σ w_i g_i + λ g₀) / (1 + λ) = Σ_i (w_i + λ/K) / (1 + λ) g_i: one weighted sum.
    d_P = weighted_rows((w + lamda / k) / (1.0 + lamda), g_KxP)
    return unflatten(d_P.astype(g_KxP.dtype)), SDMGradState(w=state.w.at[ids].set(w))

  return Aggregator(init, update)
