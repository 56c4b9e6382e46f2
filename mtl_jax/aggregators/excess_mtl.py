"""``excess_mtl``: Multi-Task Learning with Excess Risks (He et al., ICML 2024)."""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mtl_jax.aggregators._base import Aggregator, flatten_tasks, register, task_rows
from mtl_jax.aggregators._solvers import weighted_rows

# Cap on η·r_i: a baseline recorded from a vanishing gradient cannot overflow the weights.
_MAX_STEP = 1e30


class ExcessMTLState(NamedTuple):
  """Per task id, every field with a leading ``max_tasks`` axis."""

  sq_sum: jax.Array  # [max_tasks, P] Σ g_i² (elementwise, AdaGrad), float32 or wider
  baseline: jax.Array  # [max_tasks] e_i⁰, task i's first positive excess-risk estimate (0: none)
  log_w: jax.Array  # [max_tasks] log task weights (0 at init: every weight is 1)


def _size(params) -> tuple[int, jnp.dtype]:
  """(P, dtype) of the accumulators; no params (nothing shared) gives P = 0."""
  leaves = jax.tree.leaves(params)
  if not leaves:
    return 0, jnp.dtype(jnp.float32)
  dtype = jnp.promote_types(jnp.result_type(*leaves), jnp.float32)
  return sum(math.prod(jnp.shape(l)) for l in leaves), dtype


def excess_risks(sq_sum_KxP, g_KxP, eps):
  """e_i = g_iᵀ diag(1/√(S_i + eps)) g_i, S_i the squared gradients summed so far (this step's
  included): the Taylor estimate gᵀH⁻¹g with H the AdaGrad diagonal √(Σ g²)."""
  return jnp.sum(g_KxP**2 / jnp.sqrt(sq_sum_KxP + eps), axis=1)


def normalised_risks(e_K, baseline_K):
  """(r, baseline): r_i = e_i / e_i⁰; a task without a baseline takes this step's e_i (so r_i
  = 1), unless e_i = 0 (zero gradient): then it keeps none and r_i = 0."""
  base = jnp.where(baseline_K > 0, baseline_K, e_K)
  r = jnp.where(base > 0, e_K / jnp.where(base > 0, base, 1.0), 0.0)
  return r, base


def weight_step(log_w_K, r_K, step_size):
  """log of K·softmax(log w + ηr): w_i ← w_i·exp(η r_i), rescaled to sum to K."""
  k = log_w_K.shape[0]
  z = log_w_K + jnp.minimum(step_size * r_K, _MAX_STEP)
  return jax.nn.log_softmax(z) + math.log(k)


@register("excess_mtl")
def excess_mtl(step_size: float = 1e-2, eps: float = 1e-7, max_tasks: int = 64) -> Aggregator:
  """ExcessMTL: He, Zhou, Zhang, Yun, Xu, Zeng, Chilimbi & Zhao, "Robust Multi-Task Learning
  with Excess Risks", ICML 2024 (arXiv:2402.02009), as the authors' code (also LibMTL's
  ``ExcessMTL``).

  Task i's excess risk L_i(θ) − L_i(θ_i*) is estimated by a second-order Taylor expansion,
  ∝ g_iᵀH_i⁻¹g_i, with H_i the diagonal AdaGrad curvature √(Σ_s g_i,s² + eps) over the steps
  s so far (this one included): e_i = Σ_p g_ip² / √(S_ip + eps). It is normalised by the
  task's first estimate, r_i = e_i / e_i⁰ (the paper's scale normalisation, making tasks of
  different loss scales comparable; constant factors such as the Taylor ½ cancel here). The
  weights take an exponentiated-gradient step towards the tasks furthest from convergence,
  w_i ← w_i·exp(η r_i), rescaled to sum to K, and update = Σ_i w_i g_i.

  Conventions and differences:
    * Sum scale: the weights start at 1 and sum to K (LibMTL's ``loss_weight``, sum T); the
      paper's weights on the simplex are these divided by K. T = 1 gives g at every step;
      K identical gradients give K·g.
    * First step: r_i = 1 for every task, so the weights stay 1 and the update is Σ_i g_i
      (the authors' code skips the weight step on the first call: the same result).
    * Baseline e_i⁰: the estimate at the first step task i is aggregated, as the authors'
      code; the paper's Appendix C.1 averages it over the first epochs (not done here). A
      task whose first gradients are zero keeps no baseline (r_i = 0) until e_i > 0.
    * eps = 1e-7 inside the square root, as the authors' code. η·r_i is capped at 1e30 and
      the weights are kept as logs (the exponentials never overflow).
    * State per task id (``max_tasks``, filled with T by the train step): Σ g² (P floats
      per task, ``max_tasks × P`` in all, as LibMTL's T × P), e⁰ and log w, read and written
      at ``task_ids``. With K < T only the sampled tasks' accumulators advance, and their
      weights are rescaled to sum to K among themselves (the others keep theirs).
    * Extras: ``task_ids``; no ``losses`` (the estimate needs gradients only).
    * Heads get their unweighted gradients on the train path (LibMTL backpropagates
      Σ w_i L_i, so its heads get w_i ∇L_i).

  Args:
    step_size: η > 0 of the weight step (the authors' ``robust_step_size``, default 1e-2).
    eps: added to the accumulated squared gradients inside the square root (> 0).
    max_tasks: number of task ids the state holds (≥ 1).

  Returns:
    An aggregator with state :class:`ExcessMTLState`; ``init`` sizes Σ g² from the shared
    parameters (P = 0 when nothing is shared).
  """
  if not (math.isfinite(step_size) and step_size > 0.0):
    raise ValueError(f"excess_mtl step_size must be finite and > 0, got {step_size}")
  if not (math.isfinite(eps) and eps > 0.0):
    raise ValueError(f"excess_mtl eps must be finite and > 0, got {eps}")
  if not max_tasks >= 1:
    raise ValueError(f"excess_mtl max_tasks must be >= 1, got {max_tasks}")

  def init(params):
    p, dtype = _size(params)
    return ExcessMTLState(
      sq_sum=jnp.zeros((max_tasks, p), dtype),
      baseline=jnp.zeros((max_tasks,), dtype),
      log_w=jnp.zeros((max_tasks,), dtype),
    )

  def update(per_task_grads, state, params=None, task_ids=None, **extra):
    del params, extra
    g_KxP, unflatten = flatten_tasks(per_task_grads)
    ids = task_rows("excess_mtl", g_KxP.shape[0], task_ids, max_tasks)
    g = g_KxP.astype(state.sq_sum.dtype)
    sq_sum = state.sq_sum[ids] + g**2
    r, base = normalised_risks(excess_risks(sq_sum, g, eps), state.baseline[ids])
    log_w = weight_step(state.log_w[ids], r, step_size)
    d_P = weighted_rows(jnp.exp(log_w), g).astype(g_KxP.dtype)
    state = ExcessMTLState(
      sq_sum=state.sq_sum.at[ids].set(sq_sum),
      baseline=state.baseline.at[ids].set(base),
      log_w=state.log_w.at[ids].set(log_w),
    )
    return unflatten(d_P), state

  return Aggregator(init, update)
