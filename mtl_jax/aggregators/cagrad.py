"""``cagrad``: conflict-averse gradient descent (Liu et al., NeurIPS 2021)."""

import jax
import jax.numpy as jnp

from mtl_jax.aggregators._base import Aggregator, register, stateless_from_matrix
from mtl_jax.aggregators._solvers import project_simplex, task_gramian, weighted_rows

_RESCALE = {0: lambda c: 1.0, 1: lambda c: 1.0 + c**2, 2: lambda c: 1.0 + c}


def cagrad_dual(gram_TxT: jax.Array, c: float, num_iters: int = 50, eps: float = 1e-8) -> jax.Array:
  """Solves CAGrad's dual ``min_{w ∈ Δ} wᵀ G b + c ‖g_0‖ sqrt(wᵀ G w)`` with b = 1/T.

  Projected gradient: the direction is ``Π_Δ(w − ∇F(w)) − w`` and the step along it is the
  exact minimiser of ``γ s + r sqrt(A + 2Bγ + Cγ²)`` on [0, 1] (closed form), so F never
  increases and no step size needs tuning. G is divided by its largest diagonal entry
  first (the minimiser does not change; ``eps`` smooths the square root there).

  Args:
    gram_TxT: the Gramian ``g gᵀ``.
    c: the conflict-aversion radius.
    num_iters: fixed number of iterations (``lax.fori_loop``).
    eps: added under the square root, relative to the largest squared gradient norm.

  Returns:
    ``w_T`` on the simplex.
  """
  t = gram_TxT.shape[0]
  dtype = gram_TxT.dtype
  scale = jnp.max(jnp.diagonal(gram_TxT))
  g = gram_TxT / jnp.where(scale > 0, scale, 1.0)
  a_T = jnp.mean(g, axis=1)  # G b: the dot products g_i · g_0
  r = c * jnp.sqrt(jnp.maximum(jnp.mean(a_T), 0.0))  # c ‖g_0‖ (normalised units)
  r_safe = jnp.maximum(r, 1e-30)
  tiny = jnp.finfo(dtype).tiny

  def body(_, w_T):
    gw_T = g @ w_T
    q = jnp.maximum(w_T @ gw_T, 0.0) + eps  # round-off can make wᵀGw < 0
    grad_T = a_T + r * gw_T / jnp.sqrt(q)
    d_T = project_simplex(w_T - grad_T) - w_T
    gd_T = g @ d_T
    s, b, cc = d_T @ a_T, w_T @ gd_T, d_T @ gd_T
    phi = lambda gamma: (
      gamma * s + r * jnp.sqrt(jnp.maximum(q + 2 * b * gamma + cc * gamma**2, 0.0))
    )
    # φ'(γ) = s + r (Cγ + B)/sqrt(q(γ)); with τ = γ + B/C, m = q − B²/C it vanishes at
    # C τ / sqrt(C τ² + m) = k := −s/r, solvable iff k² < C; otherwise φ is monotone.
    k = -s / r_safe
    cc_safe = jnp.where(cc > tiny, cc, 1.0)
    m = jnp.maximum(q - b**2 / cc_safe, 0.0)
    inner = jnp.where(k**2 < cc, cc_safe * (cc_safe - k**2), 1.0)
    tau = k * jnp.sqrt(m) / jnp.sqrt(inner)
    gamma = jnp.where(k**2 < cc, tau - b / cc_safe, jnp.where(k > 0, 1.0, 0.0))
    gamma = jnp.where(cc > tiny, jnp.clip(gamma, 0.0, 1.0), 0.0)
    gamma = jnp.where(phi(gamma) <= phi(0.0), gamma, 0.0)  # guards float32 round-off
    return w_T + gamma * d_T

  w_T = jax.lax.fori_loop(0, num_iters, body, jnp.full((t,), 1.0 / t, dtype))
  return jnp.maximum(w_T, 0.0)


@register("cagrad")
def cagrad(c: float = 0.4, rescale: int = 1, num_iters: int = 50, eps: float = 1e-8) -> Aggregator:
  """CAGrad: Liu et al., "Conflict-Averse Gradient Descent for Multi-task Learning", 2021.

  With g_0 the MEAN gradient, finds the update d maximising the worst task improvement
  min_i g_iᵀd within the ball ‖d − g_0‖ ≤ c‖g_0‖, through its dual:
  w = argmin_{w ∈ simplex} g_wᵀ g_0 + c‖g_0‖ ‖g_w‖ with g_w = Σ_i w_i g_i, then
  d = g_0 + (c‖g_0‖ / (‖g_w‖ + eps)) g_w, divided by (1 + c²) when ``rescale=1`` (the
  default of the authors' code), by (1 + c) when ``rescale=2``, unchanged when 0.

  Scale: that of ``mean``. c = 0 returns the mean exactly. T = 1 gives
  (1 + c) g / (1 + c²) with ``rescale=1`` (≈ 1.207 g at c = 0.4), (1 + c) g with 0, g with 2.

  Solver: projected gradient on the simplex over the Gramian (float32, HIGHEST precision)
  with an exact closed-form line search, ``num_iters`` fixed iterations from uniform w
  (see ``cagrad_dual``); replaces the authors' scipy SLSQP.

  Args:
    c: conflict-aversion radius (paper's default 0.4 for its multi-task benchmarks).
    rescale: 0, 1 or 2 as above.
    num_iters: solver iterations.
    eps: added to ‖g_w‖ in the denominator and, relative, under the dual's square root.

  Returns:
    A stateless aggregator.
  """
  if rescale not in _RESCALE:
    raise ValueError(f"rescale must be 0, 1 or 2, got {rescale!r}")
  divisor = _RESCALE[rescale](c)

  def fn(g_TxP):
    # Everything but the final combination comes from the T×T Gramian: g_0 = Σ g_i / T and
    # g_w = Σ w_i g_i have ‖g_0‖² = 1ᵀG1 / T² and ‖g_w‖² = wᵀGw, so the update is ONE
    # weighted sum of the rows, d = Σ_i (1/T + λ w_i) g_i (a reduction over the task axis
    # of [T, P] would cost ~100x that matmul on XLA's CPU backend).
    t = g_TxP.shape[0]
    gram_TxT = task_gramian(g_TxP)
    w_T = cagrad_dual(gram_TxT, c, num_iters, eps)
    g0_norm = jnp.sqrt(jnp.maximum(jnp.sum(gram_TxT), 0.0)) / t
    gw_norm = jnp.sqrt(jnp.maximum(w_T @ gram_TxT @ w_T, 0.0))
    lam = c * g0_norm / (gw_norm + eps)
    d_P = weighted_rows(jnp.full((t,), 1.0 / t, gram_TxT.dtype) + lam * w_T, g_TxP)
    return (d_P if divisor == 1.0 else d_P / divisor).astype(g_TxP.dtype)

  return stateless_from_matrix(fn)
