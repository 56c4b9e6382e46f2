"""``imtl``: IMTL's update as loss weights, given the per-task gradients (Liu et al., 2021)."""

import jax
import jax.numpy as jnp

from mtl_jax.aggregators._base import flatten_tasks
from mtl_jax.aggregators.imtl_g import imtl_loss_weights
from mtl_jax.weighting import imtl_l
from mtl_jax.weighting._base import Weighting, register, resolve_ids


@register("imtl")
def imtl(
  learning_rate: float = 1e-2, optimizer: str = "adam", scale_bound: float = 20.0, eps: float = 1e-8
) -> Weighting:
  """IMTL (IMTL-L + IMTL-G, Liu et al., ICLR 2021) written as loss weights.

  ``update(losses_K, state, task_ids=None, shared_grads=G)`` with ``G`` the K per-task
  gradients of θ^sh (a ``[K, P]`` matrix or a pytree with a leading K axis) returns
  w_i = α_i e^{s_i}: e^{s_i} are the IMTL-L scales (learned exactly as ``imtl_l``, scales
  from before this step's update) and α IMTL-G's weights of the scaled gradients
  e^{s_i} g_i, so Σ_i w_i g_i is IMTL's shared update. α (hence w) may be negative.

  This is the form LibMTL's ``IMTL`` weighting has. Training with ``method=imtl`` uses the
  aggregator ``aggregators.get("imtl")`` (the same update for θ^sh) because a weighting's
  weights also scale the heads' gradients, and a negative α_i would make head i ascend its
  loss; this weighting is for computing IMTL's weights from Python.

  Args:
    learning_rate, optimizer, scale_bound: as ``imtl_l``.
    eps: as ``imtl_g``.

  Returns:
    A ``Weighting`` (state: ``imtl_l``'s ``IMTLLState``) that requires ``shared_grads``.
  """
  loss_part = imtl_l.imtl_l(learning_rate, optimizer, scale_bound)
  if not eps > 0:
    raise ValueError(f"imtl: eps must be > 0, got {eps}")

  def update(losses, state, task_ids=None, shared_grads=None, **extra):
    del extra
    if shared_grads is None:
      raise ValueError(
        "imtl needs shared_grads=[K, P] (each task's gradient of the shared parameters); "
        "to train with IMTL use method 'imtl' (the aggregator)"
      )
    g_KxP, _ = flatten_tasks(shared_grads)
    if g_KxP.shape[0] != losses.shape[0]:
      raise ValueError(f"imtl: shared_grads has {g_KxP.shape[0]} rows for {losses.shape[0]} losses")
    scales, state = loss_part.update(losses, state, task_ids=resolve_ids(losses, task_ids))
    w = imtl_loss_weights(scales, g_KxP, eps)
    return jax.lax.stop_gradient(w).astype(jnp.result_type(losses)), state

  return Weighting(loss_part.init, update, requires=("shared_grads",))
