"""DSelect-k (Hazimeh et al., "DSelect-k: Differentiable Selection in the Mixture of
Experts with Applications to Multi-Task Learning", NeurIPS 2021).

MMoE (``mmoe.py``) with each task's softmax gate replaced by a DSelect-k gate:

    f^t(x) = Σ_e q^t_e f_e(x),   q^t = Σ_{i=1..k} softmax(α^t)_i r(z^{t,i}),   y_t = h^t(f^t(x))

A *single expert selector* ``r(z)`` with logits ``z ∈ R^m``, ``m = ceil(log2 n)``, reads
``z`` as a soft binary code through the cubic smooth-step (paper eq. 3)

    S(t) = 0 (t ≤ -γ/2),   1 (t ≥ γ/2),   -2 t³/γ³ + 3 t/(2γ) + 1/2 otherwise,

    r(z)_j = Π_{l<m} [ b_l(j) S(z_l) + (1 - b_l(j)) (1 - S(z_l)) ],

where ``b_l(j)`` is bit ``l`` of ``j``. Conventions: bit 0 is the least significant
(expert ``j = Σ_l b_l(j) 2^l``) and ``z_l > 0`` votes for bit ``l = 1``, so once every
``|z_l| ≥ γ/2`` the selector is one-hot on the expert whose code is the sign pattern of
``z``. A gate mixes ``k`` selectors with ``softmax(α)``, ``α ∈ R^k``, so at most ``k``
experts stay selected after the smooth-steps saturate; ``q`` is always a probability vector.

Choices (documented deviations / options):

* Static gating (the paper's basic version, default): ``z [k, m]`` and ``α [k]`` are
  per-task parameters, with no dependence on the input. ``per_example=True`` gives the
  paper's per-example gate instead: ``z = W_z x`` and ``α = W_α x`` (linear, no bias).
* Initialisation follows the authors' reference implementation: ``z ~ U(-γ/100, γ/100)``
  (every selector starts near uniform over the experts, away from saturation) and
  ``α ~ U(-0.05, 0.05)``.
* ``n`` not a power of 2: ``r`` is evaluated on the ``n`` existing codes only and
  renormalised over them, ``r_j / Σ_{j'<n} r_j'``. If a selector is saturated on a
  non-existent code (all its existing weights exactly 0) it falls back to uniform over the
  ``n`` experts; that region has zero gradient, like any saturated selector.
* ``n = 1`` uses ``m = 1`` (a dummy bit) so that no parameter array is empty; ``q = 1``.
* The paper's optional entropy regulariser (which speeds up saturation) is not included:
  :meth:`regularizer` stays 0.

θ^sh: the n experts f_e (small MLPs, one stack with a leading expert axis). θ^t: task t's
gate (``z``, ``α``), its tower h^t (an MLP) and its linear head, all stacked on the task
axis, as in MMoE.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mtl_jax.models import register
from mtl_jax.models.mmoe import MMoE, _widths


def num_bits(num_experts: int) -> int:
  """``m = ceil(log2 n)``, at least 1."""
  return max(1, (int(num_experts) - 1).bit_length())


def binary_codes(num_experts: int) -> np.ndarray:
  """``[m, n]`` 0/1 matrix: column ``j`` is the bits of ``j``, least significant first."""
  m = num_bits(num_experts)
  return ((np.arange(num_experts)[None, :] >> np.arange(m)[:, None]) & 1).astype(np.float32)


def smooth_step(t: jax.Array, gamma: float = 1.0) -> jax.Array:
  """The cubic smooth-step S(t) of DSelect-k (eq. 3): 0 below -γ/2, 1 above γ/2."""
  cubic = -2.0 * t**3 / gamma**3 + 3.0 * t / (2.0 * gamma) + 0.5
  return jnp.where(t <= -gamma / 2, 0.0, jnp.where(t >= gamma / 2, 1.0, cubic))


def selector(z: jax.Array, num_experts: int, gamma: float = 1.0) -> jax.Array:
  """Single expert selectors: logits ``z [..., m] -> weights [..., n]`` (rows sum to 1).

  Non-existent codes (``n`` not a power of 2) are masked by renormalising over the ``n``
  existing experts; a selector with no weight left on them falls back to uniform.
  """
  codes = jnp.asarray(binary_codes(num_experts))  # [m, n]
  if z.shape[-1] != codes.shape[0]:
    raise ValueError(f"z has {z.shape[-1]} bits, {num_experts} experts need {codes.shape[0]}")
  s = smooth_step(z, gamma)[..., :, None]  # [..., m, 1]
  r = jnp.prod(codes * s + (1.0 - codes) * (1.0 - s), axis=-2)  # [..., n]
  if num_experts == 2 ** codes.shape[0]:
    return r  # every code exists: Σ_j r_j = Π_l (S + 1 - S) = 1 already
  total = r.sum(-1, keepdims=True)
  ok = total > 0
  safe = jnp.where(ok, total, 1.0)
  return jnp.where(ok, r / safe, 1.0 / num_experts)


def dselect_weights(
  z: jax.Array, alpha: jax.Array, num_experts: int, gamma: float = 1.0
) -> jax.Array:
  """The gate ``q = Σ_i softmax(α)_i r(z_i)``: ``z [..., k, m]``, ``α [..., k] -> [..., n]``."""
  r = selector(z, num_experts, gamma)  # [..., k, n]
  return jnp.einsum("...k,...kn->...n", jax.nn.softmax(alpha, axis=-1), r)


class DSelectGate(nn.Module):
  """DSelect-k gate over ``num_experts`` with ``k`` selectors: ``h [B, ...] -> q [B, n]``.

  Static (``per_example=False``): params ``z [k, m]``, ``alpha [k]``, the same ``q`` for
  every example.
  ``per_example``: ``z`` and ``α`` are linear (no bias) in the flattened input.
  """

  num_experts: int
  k: int
  gamma: float
  per_example: bool

  @nn.compact
  def __call__(self, h):
    if h.ndim > 2:
      h = h.reshape(h.shape[0], -1)
    m = num_bits(self.num_experts)
    z_init = nn.initializers.uniform(2 * self.gamma / 100)
    a_init = nn.initializers.uniform(0.1)
    if self.per_example:
      z = nn.Dense(self.k * m, use_bias=False, name="z")(h).reshape(h.shape[0], self.k, m)
      alpha = nn.Dense(self.k, use_bias=False, name="alpha")(h)
      return dselect_weights(z, alpha, self.num_experts, self.gamma)
    z = self.param("z", lambda key, s: z_init(key, s) - self.gamma / 100, (self.k, m))
    alpha = self.param("alpha", lambda key, s: a_init(key, s) - 0.05, (self.k,))
    q = dselect_weights(z, alpha, self.num_experts, self.gamma)
    return jnp.broadcast_to(q, (h.shape[0], self.num_experts))


class DSelectK(MMoE):
  """``params["shared"] = {"experts": [n, ...]}``; ``params["tasks"] = {"gate", "tower",
  "head"}`` each ``[T, ...]`` (static gate: ``gate = {"z": [T, k, m], "alpha": [T, k]}``).

  Defaults: the ``dselect_k`` builder.
  """

  def __init__(
    self,
    num_tasks: int,
    output_size: int,
    *,
    num_experts: int,
    k: int,
    gamma: float,
    per_example: bool,
    expert_widths,
    tower_widths,
    name: str = "dselect_k",
  ):
    if k < 1:
      raise ValueError(f"k must be >= 1, got {k}")
    if not gamma > 0:
      raise ValueError(f"gamma must be > 0, got {gamma}")
    super().__init__(
      num_tasks,
      output_size,
      num_experts=num_experts,
      expert_widths=expert_widths,
      tower_widths=tower_widths,
      name=name,
    )
    # Everything but the gate is MMoE's: experts in θ^sh, gate / tower / head per task.
    self.gate = DSelectGate(num_experts, int(k), float(gamma), bool(per_example))


@register("dselect_k")
def dselect_k(
  *,
  num_tasks,
  output_size,
  input_shape=None,
  width=32,
  depth=1,
  num_experts=4,
  k=2,
  gamma=1.0,
  per_example=False,
  tower_width=16,
  tower_depth=1,
):
  """DSelect-k: n shared expert MLPs, one DSelect-k gate (k selectors) + tower + head per task.

  model_kwargs: num_experts (4), k (2 selectors per task), gamma (1.0, smooth-step width),
  per_example (False: static gate), width / depth (each expert's MLP: 32 × 1),
  tower_width / tower_depth (16 × 1).
  """
  del input_shape
  return DSelectK(
    num_tasks,
    output_size,
    num_experts=num_experts,
    k=k,
    gamma=gamma,
    per_example=per_example,
    expert_widths=_widths(width, depth),
    tower_widths=_widths(tower_width, tower_depth),
  )
