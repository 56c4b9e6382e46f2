"""``graddrop``: Gradient Sign Dropout (Chen et al., NeurIPS 2020)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mtl_jax.aggregators._base import Aggregator, flatten_tasks, register
from mtl_jax.aggregators._solvers import weighted_rows


class GradDropState(NamedTuple):
  key: jax.Array  # raw uint32[2] PRNG key, split once per update


def graddrop_mask(g_TxP: jax.Array, u_P: jax.Array) -> jax.Array:
  """GradDrop's keep-mask ``M_TxP`` for uniform draws ``u_P``.

  Args:
    g_TxP: task gradients.
    u_P: one Uniform[0, 1) draw per coordinate.

  Returns:
    Boolean ``M``: where the positive-sign purity ``P > U`` keep the positive
    components, elsewhere the negative ones.
  """
  # Sums over the task axis as matmuls with a ones vector: XLA's CPU backend turns a plain
  # reduction along axis 0 of a wide [T, P] into a loop ~100x slower.
  ones_T = jnp.ones(g_TxP.shape[:1], g_TxP.dtype)
  total = weighted_rows(ones_T, g_TxP)
  mass = weighted_rows(ones_T, jnp.abs(g_TxP))
  # Coordinates where every task is zero get P = 1/2 (nothing to keep either way); where
  # all signs agree, total / mass is exactly ±1, so P ∈ {0, 1} and nothing is dropped.
  purity = 0.5 * (1.0 + total / jnp.where(mass > 0, mass, 1.0))
  keep_positive = purity > u_P
  return jnp.where(keep_positive, g_TxP > 0, g_TxP < 0)


@register("graddrop")
def graddrop_aggregator(seed: int = 0, leak: float = 0.0) -> Aggregator:
  """GradDrop: per coordinate, keep only the gradients of one randomly chosen sign.

  Chen et al., "Just Pick a Sign: Optimizing Deep Multitask Models with Gradient Sign
  Dropout" (NeurIPS 2020), Algorithm 1. Per coordinate, the positive-sign purity
  ``P = ½ (1 + Σ_i g_i / Σ_i |g_i|)`` is compared with ``U ~ Uniform[0, 1)``; task i keeps
  its component if ``P > U`` and ``g_i > 0``, or ``P ≤ U`` and ``g_i < 0``; the update is
  ``Σ_i (leak + (1 - leak) M_i) g_i``.

  Conventions:
    * Applied to the gradients of the shared parameters themselves (the paper inserts it
      at a shared activation layer and back-propagates through it); sum scale.
    * Unbiased for the sum: ``E[update] = Σ_i g_i`` per coordinate (identity
      ``f(P) = P``). Hence it is stochastic where tasks conflict: at a Pareto-stationary
      point with conflicting gradients the update does not vanish, so SGD with a
      constant step reaches a neighbourhood of the Pareto set whose size scales with the
      step; with a decaying step it behaves like SGD on the sum.
    * Deterministic cases: T = 1 is the identity, identical (more generally
      sign-agreeing) gradients give exactly their sum.
    * eps: a coordinate with ``Σ|g_i| = 0`` gets ``P = ½`` (its update is 0 anyway).
      The tie ``P = U`` keeps the negative side, so ``P = 0`` never drops anything.
    * Randomness: the state holds a key made from ``seed`` and split each step; passing
      ``rng=key`` to ``update`` uses that key instead and leaves the state unchanged.

  Args:
    seed: seed of the key kept in the state.
    leak: fraction of every dropped component let through (0 is the paper's GradDrop).

  Returns:
    An aggregator with state :class:`GradDropState`.
  """

  def init(params):
    del params
    return GradDropState(key=jax.random.PRNGKey(seed))

  def update(per_task_grads, state, params=None, rng=None, **extra):
    del params, extra
    g_TxP, unflatten = flatten_tasks(per_task_grads)
    if rng is None:
      key, draw_key = jax.random.split(state.key)
      state = GradDropState(key=key)
    else:
      draw_key = rng
    dtype = jnp.promote_types(g_TxP.dtype, jnp.float32)
    u_P = jax.random.uniform(draw_key, (g_TxP.shape[1],), dtype)
    m_TxP = graddrop_mask(g_TxP, u_P).astype(g_TxP.dtype)
    if leak:
      m_TxP = leak + (1.0 - leak) * m_TxP
    ones_T = jnp.ones(g_TxP.shape[:1], g_TxP.dtype)
    return unflatten(weighted_rows(ones_T, m_TxP * g_TxP).astype(g_TxP.dtype)), state

  return Aggregator(init, update)
