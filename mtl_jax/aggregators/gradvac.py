"""``gradvac``: Gradient Vaccine (Wang et al., ICLR 2021)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mtl_jax.aggregators._base import Aggregator, flatten_tasks, register, task_rows
from mtl_jax.aggregators._solvers import task_gramian, weighted_rows


class GradVacState(NamedTuple):
  phi_hat: jax.Array  # [max_tasks, max_tasks] EMA cosine targets; the leading T×T used
  key: jax.Array  # raw uint32[2] PRNG key for the partner order, split once per update


def vaccinate(gram_TxT, phi_hat_TxT, order_TxT, beta, eps, max_target=0.9999):
  """GradVac's pairwise corrections, carried out on the Gramian.

  The modified gradient of task i is kept as coefficients ``c_i`` over the original
  gradients (``g'_i = c_iᵀ g``), so every norm and cosine is a T×T computation and the
  P-sized gradients are touched once, by the caller.

  Args:
    gram_TxT: ``G = g gᵀ``.
    phi_hat_TxT: EMA targets φ̂_ij (row i: task being modified).
    order_TxT: row i is the order in which i visits partners (entries equal to i skip).
    beta: EMA rate.
    eps: added to the denominators of the cosine and of the correction weight.
    max_target: targets are clipped to [-max_target, max_target] where they are used
      (the table keeps the plain EMA): at a target of ±1, √(1-φ̂²) = 0 and the weight
      would divide by eps.

  Returns:
    ``(c_TxT, new_phi_hat_TxT)``: coefficients of the modified gradients, updated targets.
  """
  t = gram_TxT.shape[0]
  norm_T = jnp.sqrt(jnp.maximum(jnp.diagonal(gram_TxT), 0.0))

  def one_task(i, phi_row_T, order_T):
    def visit(carry, j):
      c_T, phi_row_T = carry
      dots_T = c_T @ gram_TxT  # g'_iᵀ g_k for every k
      norm_i = jnp.sqrt(jnp.maximum(dots_T @ c_T, 0.0))
      norm_j = norm_T[j]
      phi = jnp.clip(dots_T[j] / (norm_i * norm_j + eps), -1.0, 1.0)
      target = jnp.clip(phi_row_T[j], -max_target, max_target)
      sin_phi = jnp.sqrt(jnp.maximum(1.0 - phi * phi, 0.0))
      sin_target = jnp.sqrt(jnp.maximum(1.0 - target * target, 0.0))
      # Weight of g_j that lifts cos(g'_i, g_j) from phi to the target (paper, Eq. 4).
      w = norm_i * (target * sin_phi - phi * sin_target) / (norm_j * sin_target + eps)
      other = j != i
      # A zero partner has no direction to vaccinate towards.
      apply = other & (phi < target) & (norm_j > 0)
      c_T = c_T.at[j].add(jnp.where(apply, w, 0.0))
      ema = (1.0 - beta) * phi_row_T[j] + beta * phi
      phi_row_T = phi_row_T.at[j].set(jnp.where(other, ema, phi_row_T[j]))
      return (c_T, phi_row_T), None

    c0_T = (jnp.arange(t) == i).astype(gram_TxT.dtype)
    (c_T, phi_row_T), _ = jax.lax.scan(visit, (c0_T, phi_row_T), order_T)
    return c_T, phi_row_T

  return jax.vmap(one_task)(jnp.arange(t), phi_hat_TxT, order_TxT)


def _partner_order(key, rng, t: int, shuffle: bool):
  """``(new state key, order_TxT)``: a random partner order per task, or 0..T-1."""
  if rng is None:
    key, order_key = jax.random.split(key)
  else:
    order_key = rng
  if not shuffle:
    return key, jnp.broadcast_to(jnp.arange(t), (t, t))
  keys = jax.random.split(order_key, t)
  return key, jax.vmap(lambda k: jax.random.permutation(k, t))(keys)


@register("gradvac")
def gradvac_aggregator(
  beta: float = 0.5,
  eps: float = 1e-8,
  shuffle: bool = True,
  seed: int = 0,
  max_tasks: int = 64,
  max_target: float = 0.9999,
) -> Aggregator:
  """Gradient Vaccine: raise each pairwise cosine towards an EMA target.

  Wang, Tsvetkov, Firat & Cao, "Gradient Vaccine: Investigating and Improving Multi-task
  Optimization in Massively Multilingual Models" (ICLR 2021), Algorithm 1 at the
  whole-model granularity. For each task i and partner j ≠ i (in random order), with
  φ = cos(g'_i, g_j) of the gradient modified so far and the target φ̂_ij: if φ < φ̂_ij,
  ``g'_i += w g_j`` with
  ``w = ‖g'_i‖ (φ̂ √(1-φ²) - φ √(1-φ̂²)) / (‖g_j‖ √(1-φ̂²))``, which sets the cosine to
  φ̂_ij; then ``φ̂_ij ← (1-β) φ̂_ij + β φ``. The update is ``Σ_i g'_i``.

  Conventions:
    * Sum scale: T = 1 is the identity; identical gradients g (cosine 1 ≥ any target)
      are left alone, giving ``T g``.
    * Targets start at 0 (so the first step acts like PCGrad's "no negative cosine"),
      one per ordered pair, kept in a ``max_tasks × max_tasks`` table of which the
      leading T×T block is used (``init`` cannot see T); T > ``max_tasks`` is an error.
    * eps is added to both denominators; cosines are clipped to [-1, 1]; a zero
      gradient is never used as a partner and its own row stays zero.
    * Targets are used clipped to [-``max_target``, ``max_target``] (the table keeps
      the plain EMA). Identical gradients drive an EMA target to exactly 1.0 in float32
      (about 24 steps); √(1-φ̂²) is then 0 and a cosine rounded just below 1 would get a
      weight divided by eps (updates of norm 1e7+). Cosines above ``max_target`` are
      left alone instead.
    * Partner order: a fresh random permutation per task and step from the state's key
      (``shuffle=True``, as PCGrad), or the fixed order 0..T-1 (``shuffle=False``,
      deterministic). ``rng=key`` passed to ``update`` replaces the state's key for
      that step. The randomness only changes the order of the corrections.
    * When the K gradients are a sample of the tasks, pass ``task_ids=ids`` (``[K]``
      distinct ints < ``max_tasks``) so each pair keeps its own target; without it row k
      of the input is task k.
    * Vectorised: ``vmap`` over tasks, ``lax.scan`` over partners, all in T×T space.

  Args:
    beta: EMA rate of the targets (the paper's β).
    eps: added to denominators.
    shuffle: random partner order per step (else fixed).
    seed: seed of the key kept in the state.
    max_tasks: size of the target table.
    max_target: largest target cosine used, in (0, 1).

  Returns:
    An aggregator with state :class:`GradVacState`.
  """

  if not 0.0 < max_target < 1.0:
    raise ValueError(f"gradvac max_target must be in (0, 1), got {max_target}")

  def init(params):
    del params
    return GradVacState(
      phi_hat=jnp.zeros((max_tasks, max_tasks), jnp.float32), key=jax.random.PRNGKey(seed)
    )

  def update(per_task_grads, state, params=None, rng=None, task_ids=None, **extra):
    del params, extra
    g_TxP, unflatten = flatten_tasks(per_task_grads)
    t = g_TxP.shape[0]
    ids = task_rows("gradvac", t, task_ids, state.phi_hat.shape[0])  # rows of the targets
    key, order_TxT = _partner_order(state.key, rng, t, shuffle)
    gram = task_gramian(g_TxP)
    phi_hat = state.phi_hat[ids[:, None], ids[None, :]].astype(gram.dtype)
    c_TxT, phi_hat = vaccinate(gram, phi_hat, order_TxT, beta, eps, max_target)
    table = state.phi_hat.at[ids[:, None], ids[None, :]].set(phi_hat.astype(state.phi_hat.dtype))
    return unflatten(weighted_rows(jnp.sum(c_TxT, axis=0), g_TxP)), GradVacState(table, key)

  return Aggregator(init, update)
