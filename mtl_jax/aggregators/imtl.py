"""``imtl``: Impartial Multi-Task Learning, loss and gradient balance together (Liu et al.,
ICLR 2021)."""

import jax.numpy as jnp

from mtl_jax.aggregators._base import Aggregator, flatten_tasks, register, task_rows
from mtl_jax.aggregators._solvers import weighted_rows
from mtl_jax.aggregators.imtl_g import imtl_loss_weights
from mtl_jax.weighting import imtl_l


@register("imtl")
def imtl(
  learning_rate: float = 1e-2,
  optimizer: str = "adam",
  scale_bound: float = 20.0,
  eps: float = 1e-8,
  max_tasks: int = 64,
) -> Aggregator:
  """IMTL = IMTL-L + IMTL-G: Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, "Towards
  Impartial Multi-task Learning", ICLR 2021 (Algorithm 1).

  Loss balance (IMTL-L, ``imtl_l``): a learned scale s_i per task, scaled loss
  e^{s_i} L_i − s_i, s stepped by its own optimiser on ∂/∂s_i = e^{s_i} L_i − 1 (drives each
  scaled loss towards 1). Gradient balance (IMTL-G, ``imtl_g``) on the scaled losses'
  gradients e^{s_i} g_i: update = Σ_i α_i e^{s_i} g_i with Σ α = 1 and equal projections of
  the update onto every unit task gradient.

  Conventions:
    * Scale: Σα = 1 on the scaled gradients, so at the start (s = 0) identical gradients give
      g and T = 1 gives e^{s}g (g on the first step). The scales used are those from before
      this step's s-update, as ``imtl_l``.
    * θ^i get their unscaled gradient ∇L_i on this library's aggregator path (the paper
      backpropagates the scaled loss into the heads, e^{s_i}∇L_i); see docs/methods.md.
    * Extras: ``losses`` (needed to learn s; without them s stays where it is and the update
      is IMTL-G on the currently scaled gradients) and ``task_ids`` (s and its optimiser slot
      are kept per task id in a ``max_tasks`` table, so K < T sampling works).
    * ``weighting.get("imtl")`` gives the same update as loss weights w_i = α_i e^{s_i}
      (given the per-task gradients); training with ``method=imtl`` uses this aggregator.

  Args:
    learning_rate: step size of s (> 0).
    optimizer: ``"adam"`` (default) or ``"sgd"`` for s.
    scale_bound: |s| is clipped to this (> 0).
    eps: added to gradient norms in IMTL-G; norms ≤ eps count as zero.
    max_tasks: number of task ids the state holds (the train step fills T).

  Returns:
    An aggregator whose state is ``imtl_l``'s ``IMTLLState`` over ``max_tasks`` ids.
  """
  loss_part = imtl_l.imtl_l(learning_rate, optimizer, scale_bound)
  if not eps > 0:
    raise ValueError(f"imtl: eps must be > 0, got {eps}")

  def init(params):
    del params
    return loss_part.init(max_tasks)

  def update(per_task_grads, state, params=None, losses=None, task_ids=None, **extra):
    del params, extra
    g_KxP, unflatten = flatten_tasks(per_task_grads)
    ids = task_rows("imtl", g_KxP.shape[0], task_ids, max_tasks)
    if losses is None:
      scales = jnp.exp(state.scales[ids])
    else:
      scales, state = loss_part.update(jnp.asarray(losses), state, task_ids=ids)
    w_K = imtl_loss_weights(scales, g_KxP, eps)
    return unflatten(weighted_rows(w_K, g_KxP).astype(g_KxP.dtype)), state

  return Aggregator(init, update)
