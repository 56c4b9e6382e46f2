"""``fairgrad``: fair resource allocation in multi-task learning (Ban & Ji, ICML 2024)."""

import jax
import jax.numpy as jnp

from mtl_jax.aggregators._base import Aggregator, register, stateless_from_matrix
from mtl_jax.aggregators._solvers import task_gramian, weighted_rows

_NUM_STEPS = 16  # candidate step sizes of the backtracking line search: 1, ½, ..., 2^-15


def _utility(w_T: jax.Array, alpha: float) -> jax.Array:
  """Σ_i ψ(w_i) with ψ'(w) = w^{-1/α}: (w^c − 1)/c for c = 1 − 1/α, log w at α = 1."""
  c = 1.0 - 1.0 / alpha
  log_w = jnp.log(w_T)
  if c == 0.0:
    return jnp.sum(log_w)
  return jnp.sum(jnp.expm1(c * log_w) / c)


def _newton_step(gram_TxT, w_T, alpha):
  """One damped Newton step on f(w) = ½ wᵀGw − Σ ψ(w_i); returns ``(w, λ²)``."""
  dtype = w_T.dtype
  f = lambda w: 0.5 * w @ (gram_TxT @ w) - _utility(w, alpha)
  grad_T = gram_TxT @ w_T - w_T ** (-1.0 / alpha)
  # Diagonally scaled system (W H W) z = W ∇f with W = diag(w), H = G + diag(w^{-1/α-1}/α):
  # the Newton direction is −W z, and the scaled matrix stays well conditioned as w spreads.
  h_TxT = w_T[:, None] * gram_TxT * w_T[None, :] + jnp.diag(w_T ** (1.0 - 1.0 / alpha) / alpha)
  scaled_grad_T = w_T * grad_T
  z_T = jnp.linalg.solve(h_TxT, scaled_grad_T)
  dec2 = jnp.maximum(scaled_grad_T @ z_T, 0.0)  # squared Newton decrement ∇fᵀH⁻¹∇f
  # Largest step keeping w > 0 (w ← w(1 − s z)), then Armijo backtracking over 2^-j.
  zmax = jnp.max(z_T)
  s_max = jnp.where(zmax > 0, jnp.minimum(1.0, 0.95 / jnp.where(zmax > 0, zmax, 1.0)), 1.0)
  steps = s_max * 0.5 ** jnp.arange(_NUM_STEPS, dtype=dtype)
  cand = w_T[None, :] * (1.0 - steps[:, None] * z_T[None, :])
  ok = jax.vmap(f)(cand) <= f(w_T) - 0.25 * steps * dec2
  # Close to the solution (λ² < 1/16) take the full step: there f's rounding can hide the
  # decrease and let a vanishing step pass the test.
  j = jnp.where(jnp.any(ok) & (dec2 >= 1.0 / 16.0), jnp.argmax(ok), 0)
  return jnp.maximum(cand[j], jnp.finfo(dtype).tiny), dec2


def fairgrad_solve(
  gram_TxT: jax.Array,
  alpha: float = 1.0,
  max_iters: int = 50,
  tol: float = 1e-10,
  eps: float = 1e-6,
) -> jax.Array:
  """Solves ``G w = w^{-1/α}`` (w > 0, elementwise power) for the Gramian ``G = g gᵀ``.

  The equation is the stationarity condition of the strictly convex
  f(w) = ½ wᵀGw − Σ_i ψ(w_i), ψ'(w) = w^{-1/α} (ψ = log at α = 1, as Nash-MTL), so its
  solution is f's unique minimiser. G is first divided by its largest diagonal entry s
  and ``eps``·I added (without the ridge a singular G, e.g. anti-parallel gradients, has
  no solution); the solution of the scaled problem is mapped back by w = s^{-α/(1+α)} ŵ,
  which is exact for the unridged system. Damped Newton from the orthogonal-gradient
  solution w_i = Ĝ_ii^{-α/(1+α)}: every step solves a diagonally scaled Newton system, is
  capped at 95% of the way to the boundary w = 0, and takes the first of 1, ½, ..., 2^-15
  (times that cap) that satisfies Armijo's condition (slope ¼), so f decreases and the
  iteration converges globally; once the squared decrement is below 1/16 it takes full
  steps (quadratic convergence, and no line search fooled by f's rounding).
  ``lax.while_loop`` stops when the squared Newton decrement is below ``tol`` or after
  ``max_iters`` steps. In float32 the decrement often stalls just above ``tol`` once the
  residual is at rounding level, so the cap ends those solves. Large α (≳ 5: the potential
  flattens towards linear) with many tasks whose gradient norms span several decades can
  need more than 50 steps.

  Args:
    gram_TxT: the Gramian ``g gᵀ``.
    alpha: the fairness exponent α > 0.
    max_iters: Newton iteration cap.
    tol: stopping threshold on the squared Newton decrement (scaled problem).
    eps: ridge, relative to the largest squared gradient norm.

  Returns:
    ``w_T > 0`` with ``(G + eps·s·I) w = w^{-1/α}`` up to the tolerance.
  """
  t = gram_TxT.shape[0]
  dtype = gram_TxT.dtype
  scale = jnp.max(jnp.diagonal(gram_TxT))
  scale = jnp.where(scale > 0, scale, 1.0)
  g = gram_TxT / scale + eps * jnp.eye(t, dtype=dtype)
  # Start from the solution for orthogonal gradients, G_ii w_i = w_i^{-1/α}: right per task
  # in order of magnitude when the gradient norms span decades (fewer damped steps than a
  # common start).
  w0_T = jnp.diagonal(g) ** (-alpha / (1.0 + alpha))

  def cond(carry):
    it, _, dec2 = carry
    return (it < max_iters) & (dec2 > tol)

  def body(carry):
    it, w_T, _ = carry
    w_T, dec2 = _newton_step(g, w_T, alpha)
    return it + 1, w_T, dec2

  init = (jnp.array(0), w0_T, jnp.array(jnp.inf, dtype))
  _, w_T, _ = jax.lax.while_loop(cond, body, init)
  return w_T * scale ** (-alpha / (1.0 + alpha))


@register("fairgrad")
def fairgrad(
  alpha: float = 1.0, max_iters: int = 50, tol: float = 1e-10, eps: float = 1e-6
) -> Aggregator:
  """FairGrad: Ban & Ji, "Fair Resource Allocation in Multi-Task Learning", ICML 2024.

  update = Gᵀw = Σ_i w_i g_i (G the T×P gradient matrix) with w > 0 solving (G Gᵀ) w = w^{-1/α}
  elementwise, i.e. every task's rate of loss decrease g_iᵀd = w_i^{-1/α} is the α-fair
  allocation (α → 0: utilitarian sum, α = 1: proportional fairness, as Nash-MTL; α → ∞:
  max-min). Orthogonal gradients give w_i = ‖g_i‖^{-2α/(1+α)}.

  Solver (see ``fairgrad_solve``): damped Newton with Armijo backtracking on the convex
  potential whose stationarity condition is the equation, in at least float32, stopping
  when the squared Newton decrement is below ``tol`` (1e-10) or after ``max_iters`` (50)
  steps (about 3-15 steps for α ≤ 5 in our checks; see ``fairgrad_solve`` for large α). The
  authors' code (and LibMTL's
  ``FairGrad``) solves it with ``scipy.optimize.least_squares`` from w = 1/T, which
  cannot run inside ``jit``.

  Conventions:
    * No normalisation: w scales as ‖g‖^{-2α/(1+α)}, so ‖d‖ scales as ‖g‖^{(1−α)/(1+α)}
      (α = 1: T = 1 gives g/‖g‖, a unit update as ``nash_mtl``; use a decaying learning
      rate to settle at a Pareto-stationary point).
    * ``eps``: a ridge eps·max_i‖g_i‖² on G, so a solution exists when G is singular
      (anti-parallel or zero gradients, at Pareto-stationary points); a zero gradient gets
      a large but finite weight and contributes nothing.
    * Stateless (cold start each step). Heads get their unweighted gradients on the train
      path (the authors backpropagate Σ w_i L_i, so theirs get w_i ∇L_i).

  Args:
    alpha: α > 0.
    max_iters: Newton iteration cap.
    tol: stopping threshold on the squared Newton decrement.
    eps: relative ridge on the Gramian.

  Returns:
    A stateless aggregator.
  """
  if not alpha > 0:
    raise ValueError(f"fairgrad alpha must be > 0, got {alpha}")
  if not eps > 0:
    raise ValueError(f"fairgrad eps must be > 0, got {eps}")
  alpha = float(alpha)

  def fn(g_TxP):
    w_T = fairgrad_solve(task_gramian(g_TxP), alpha, max_iters, tol, eps)
    return weighted_rows(w_T, g_TxP).astype(g_TxP.dtype)

  return stateless_from_matrix(fn)
