"""Small jittable solvers shared by the aggregators (all work on T-sized problems)."""

import jax
import jax.numpy as jnp


def project_simplex(v_T: jax.Array) -> jax.Array:
  """Euclidean projection of ``v_T`` onto the probability simplex.

  Sort-based (Held et al. 1974; Duchi et al. 2008): find the threshold θ such that
  ``max(v - θ, 0)`` sums to one.

  Args:
    v_T: a vector ``[T]``.

  Returns:
    ``argmin_{w ≥ 0, Σw = 1} ‖w - v‖``, same shape and dtype as ``v_T``.
  """
  t = v_T.shape[-1]
  u = jnp.sort(v_T)[::-1]
  css = jnp.cumsum(u) - 1.0
  idx = jnp.arange(1, t + 1, dtype=v_T.dtype)
  # The condition holds on a prefix of the sorted vector, so its count is the support size.
  rho = jnp.maximum(jnp.sum(u - css / idx > 0), 1)
  theta = css[rho - 1] / rho.astype(v_T.dtype)
  return jnp.maximum(v_T - theta, 0.0)


def min_norm_simplex(gram_TxT: jax.Array, max_iters: int = 250, tol: float = 1e-6) -> jax.Array:
  """Weights of the min-norm point of the convex hull of T vectors, from their Gramian.

  Solves ``min_{α ∈ Δ} αᵀ G α`` with pairwise Frank–Wolfe (Lacoste-Julien & Jaggi 2015):
  each step moves mass from the worst active vertex to the best vertex with an exact
  (closed-form) line search. Unlike plain Frank–Wolfe (Sener & Koltun 2018) it converges
  linearly on this problem, so a few dozen steps reach float32 accuracy. Runs under
  ``lax.while_loop``: stops once the Frank–Wolfe gap is below ``tol`` or after
  ``max_iters`` steps. ``G`` is divided by its largest diagonal entry first, so ``tol`` is
  relative to the largest squared gradient norm.

  Args:
    gram_TxT: the Gramian ``G = g gᵀ`` (symmetric PSD).
    max_iters: iteration cap.
    tol: stopping threshold on the (normalised) Frank–Wolfe gap.

  Returns:
    ``alpha_T`` on the simplex (starts from uniform; T = 1 gives ``[1]``).
  """
  t = gram_TxT.shape[0]
  dtype = gram_TxT.dtype
  scale = jnp.max(jnp.diagonal(gram_TxT))
  g = gram_TxT / jnp.where(scale > 0, scale, 1.0)
  alpha0 = jnp.full((t,), 1.0 / t, dtype)

  def cond(carry):
    it, _, gap = carry
    return (it < max_iters) & (gap > tol)

  def body(carry):
    it, alpha, _ = carry
    grad = g @ alpha  # half the gradient of αᵀGα
    s = jnp.argmin(grad)
    v = jnp.argmax(jnp.where(alpha > 0, grad, -jnp.inf))
    gap = alpha @ grad - grad[s]
    # Along d = e_s - e_v: f(α + γd) - f(α) = -2γ(grad_v - grad_s) + γ² dᵀGd.
    descent = grad[v] - grad[s]
    curv = g[s, s] + g[v, v] - 2.0 * g[s, v]
    gamma_max = alpha[v]
    gamma = jnp.where(
      curv > 0, jnp.minimum(descent / jnp.where(curv > 0, curv, 1.0), gamma_max), gamma_max
    )
    gamma = jnp.maximum(gamma, 0.0)
    alpha = alpha.at[s].add(gamma).at[v].add(-gamma)
    return it + 1, jnp.maximum(alpha, 0.0), gap

  _, alpha, _ = jax.lax.while_loop(cond, body, (jnp.array(0), alpha0, jnp.array(jnp.inf, dtype)))
  return alpha / jnp.sum(alpha)


def task_gramian(g_TxP: jax.Array) -> jax.Array:
  """Gramian ``G = g gᵀ`` of the task gradients, accumulated in at least float32.

  ``Precision.HIGHEST`` keeps accelerators from rounding the inputs to bf16/tf32: the
  T×T matrix is tiny but feeds eigen-decompositions and QPs that amplify its errors.

  Args:
    g_TxP: task gradients, one per row.

  Returns:
    ``gram_TxT`` (symmetrised), dtype ``promote(g.dtype, float32)``.
  """
  dtype = jnp.promote_types(g_TxP.dtype, jnp.float32)
  g = g_TxP.astype(dtype)
  gram = jnp.dot(g, g.T, precision=jax.lax.Precision.HIGHEST)
  return 0.5 * (gram + gram.T)


def project_weights_dual_cone(
  u_T: jax.Array, gram_TxT: jax.Array, max_iters: int | None = None, tol: float = 1e-6
) -> jax.Array:
  """Weights of the projection of ``gᵀu`` onto the dual cone ``{x : g x ≥ 0}``.

  By Quinton & Rey (2024, Prop. 1) the projection is ``gᵀw`` with
  ``w = argmin_{v ≥ u} vᵀ G v``. Writing ``v = u + s`` gives the bound-constrained QP
  ``min_{s ≥ 0} ½ sᵀGs + (Gu)ᵀs``, solved exactly (up to rounding) by the Lawson–Hanson
  primal active-set method: grow the free set by the most violated multiplier, solve the
  free block, step back to feasibility when a free variable turns non-positive. It
  terminates in finitely many steps (typically ≤ the number of free variables, which is
  why it is used instead of projected gradient, whose iteration count grows with the
  condition number of G). A ``lax.while_loop`` capped at ``max_iters`` (default
  ``4T + 10``) keeps it jittable; each step is one masked T×T solve.

  Args:
    u_T: the weights to project (``[T]``).
    gram_TxT: symmetric positive-definite Gramian (add a ridge if it may be singular).
    max_iters: iteration cap; ``None`` gives ``4T + 10``.
    tol: a multiplier counts as violated when ``-(G v)_j > tol · max|G_jj| · max|u|``.

  Returns:
    ``w_T ≥ u_T`` with ``G w ≥ 0`` and ``(w - u)ᵀ G w = 0`` (the KKT conditions).
  """
  t = u_T.shape[0]
  max_iters = 4 * t + 10 if max_iters is None else max_iters
  q = gram_TxT @ u_T
  eye = jnp.eye(t, dtype=gram_TxT.dtype)
  idx = jnp.arange(t)
  thr = tol * jnp.max(jnp.abs(jnp.diagonal(gram_TxT))) * jnp.max(jnp.abs(u_T))

  def cond(carry):
    it, _, _, done = carry
    return (it < max_iters) & ~done

  def body(carry):
    it, s, free, _ = carry
    # Solve the free block G_FF z_F = -q_F; the identity on fixed rows keeps it square
    # and positive definite, so Cholesky applies.
    m = jnp.where(free[:, None] & free[None, :], gram_TxT, eye)
    chol = jax.scipy.linalg.cho_factor(m, lower=True)
    z = jnp.where(free, jax.scipy.linalg.cho_solve(chol, jnp.where(free, -q, 0.0)), 0.0)
    feasible = jnp.all(jnp.where(free, z > 0, True))
    # Feasible: accept z and free the bound with the most negative multiplier G(u+z).
    cand = jnp.where(free, -jnp.inf, -(gram_TxT @ z + q))
    j = jnp.argmax(cand)
    add = cand[j] > thr
    free_add = free | (add & (idx == j))
    # Infeasible: move from s towards z until the first free variable hits zero.
    block = free & (z <= 0)
    ratio = jnp.where(block, s / jnp.where(block, s - z, 1.0), jnp.inf)
    alpha = jnp.min(ratio)
    free_drop = free & ~(block & (ratio <= alpha))
    s_step = jnp.where(free_drop, jnp.maximum(s + alpha * (z - s), 0.0), 0.0)
    s = jnp.where(feasible, z, s_step)
    free = jnp.where(feasible, free_add, free_drop)
    return it + 1, s, free, feasible & ~add

  init = (jnp.array(0), jnp.zeros_like(u_T), jnp.zeros(t, bool), jnp.array(False))
  _, s, _, _ = jax.lax.while_loop(cond, body, init)
  return u_T + s


def dual_cone_gramian(gram_TxT: jax.Array, norm_eps: float, reg_eps: float) -> jax.Array:
  """Gramian prepared for :func:`project_weights_dual_cone`, as torchjd does it.

  Divides by the trace (the squared Frobenius norm of g), or zeroes it when that trace is
  below ``norm_eps``, then adds ``reg_eps · I`` so the QP is strictly convex even when the
  gradients are linearly dependent (T > P, duplicated tasks, a zero row).
  """
  trace = jnp.trace(gram_TxT)
  g = jnp.where(trace < norm_eps, 0.0, gram_TxT / jnp.where(trace > 0, trace, 1.0))
  return g + reg_eps * jnp.eye(gram_TxT.shape[0], dtype=gram_TxT.dtype)


def weighted_rows(w_T: jax.Array, g_TxP: jax.Array) -> jax.Array:
  """``Σ_i w_i g_i`` in the wider of the two dtypes, at full matmul precision."""
  dtype = jnp.promote_types(w_T.dtype, g_TxP.dtype)
  return jnp.dot(w_T.astype(dtype), g_TxP.astype(dtype), precision=jax.lax.Precision.HIGHEST)
