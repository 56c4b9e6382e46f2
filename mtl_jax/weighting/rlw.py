"""``rlw``: Random Loss Weighting (Lin, Ye, Xu, Shi & Zhang, 2022)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mtl_jax.weighting import _checks
from mtl_jax.weighting._base import Weighting, register

_DISTRIBUTIONS = ("normal", "uniform", "dirichlet")


class RLWState(NamedTuple):
  """The fallback PRNG key, used (and advanced) only when no ``rng`` extra is passed."""

  key: jax.Array


@register("rlw")
def rlw(distribution: str = "normal", concentration: float = 1.0, seed: int = 0) -> Weighting:
  """Fresh random weights every step, scaled so the K sampled weights sum to K.

  Lin et al., "Reasonable Effectiveness of Random Weighting: A Litmus Test for Multi-Task
  Learning", TMLR 2022. λ = softmax(ε) with ε ~ N(0, I_K) (``"normal"``, the paper's
  default) or ε ~ U(0, 1)^K (``"uniform"``), or λ ~ Dirichlet(``concentration``·1_K)
  (``"dirichlet"``); the weights are K·λ, so their mean is 1 like ``equal`` (the paper's λ
  sums to 1). T = 1 always gives 1. Weights depend only on the key, not on the losses.

  Randomness: ``requires = ("rng",)``, so the train step passes a fresh key (e.g. its
  ``fold_in(rng, step)``) and the state is left unchanged; called without ``rng``, the key
  kept in the state (from ``seed``) is split and advanced every step instead.

  Args:
    distribution: one of ``"normal"``, ``"uniform"``, ``"dirichlet"``.
    concentration: Dirichlet concentration α > 0 (only used by ``"dirichlet"``).
    seed: seed of the fallback key kept in the state.

  Returns:
    A ``Weighting`` whose state is an ``RLWState``.
  """
  _checks.choice("rlw", "distribution", distribution, _DISTRIBUTIONS)
  alpha = _checks.number("rlw", "concentration", concentration, low=0, strict_low=True)
  if isinstance(seed, bool) or not isinstance(seed, int):
    raise ValueError(f"rlw: seed must be an int, got {seed!r}")

  def sample(key, k):
    if distribution == "dirichlet":
      return jax.random.dirichlet(key, jnp.full((k,), alpha, jnp.float32))
    if distribution == "normal":
      eps = jax.random.normal(key, (k,), jnp.float32)
    else:
      eps = jax.random.uniform(key, (k,), jnp.float32)
    return jax.nn.softmax(eps)

  def init(num_tasks):
    _checks.num_tasks("rlw", num_tasks)
    return RLWState(jax.random.PRNGKey(seed))

  def update(losses, state, task_ids=None, *, rng=None, **extra):
    del task_ids, extra
    if rng is None:
      new_key, rng = jax.random.split(state.key)
      state = RLWState(new_key)
    k = losses.shape[0]
    return (k * sample(rng, k)).astype(losses.dtype), state

  return Weighting(init, update, requires=("rng",))
