"""Soft parameter sharing: one network per task, pulled together by a distance penalty.

Duong et al., "Low Resource Dependency Parsing: Cross-lingual Parameter Sharing in a
Neural Network Parser", ACL 2015 (ℓ2 penalty between two tasks' parameters); Yang &
Hospedales, "Trace Norm Regularised Deep Multi-Task Learning", ICLR-W 2017.

Every task keeps a whole network (``num_shared = 0``: ``params["shared"]`` is empty), and
:meth:`SoftSharingNet.regularizer` adds λ·Σ_{t<t'} ‖θ^t − θ^{t'}‖ (``soft_norm="l2"``), its
square (``"squared"``) or Σ_t ‖θ^t − θ̄‖ (``"mean"``) to the training loss, computed by
:func:`mtl_jax.sharing.soft_sharing_penalty` on the stacked ``[T, ...]`` parameters (no
loop over task pairs). By default only the trunk layers are penalised (the heads stay
free, as in hard sharing); ``soft_heads=True`` penalises the heads too. λ = 0 is exactly
the independent baseline; λ → ∞ approaches hard sharing of the penalised layers.
"""

import jax

from mtl_jax.models import _trunk, register
from mtl_jax.models.layer_split import LayerSplitNet
from mtl_jax.sharing import NORMS, soft_sharing_penalty


class SoftSharingNet(LayerSplitNet):
  """Independent stacked networks (``num_shared = 0``) + the soft-sharing penalty as the
  regulariser."""

  def __init__(
    self,
    layers,
    num_tasks: int,
    output_size: int,
    *,
    soft_lambda: float,
    soft_norm: str,
    soft_heads: bool,
    name: str = "soft_sharing",
  ):
    super().__init__(layers, num_tasks, output_size, num_shared=0, name=name)
    if soft_norm not in NORMS:
      raise ValueError(f"unknown soft_norm {soft_norm!r}; valid: {', '.join(NORMS)}")
    if soft_lambda < 0:
      raise ValueError(f"soft_lambda must be >= 0, got {soft_lambda}")
    self.soft_lambda = float(soft_lambda)
    self.soft_norm = soft_norm
    self.soft_heads = soft_heads

  def penalised(self, params: dict) -> dict:
    """The stacked per-task parameters the penalty pulls together."""
    tasks = params["tasks"]
    return tasks if self.soft_heads else {k: v for k, v in tasks.items() if k != "head"}

  def regularizer(self, params: dict) -> jax.Array:
    return soft_sharing_penalty(self.penalised(params), self.soft_lambda, self.soft_norm)


@register("soft_sharing")
def soft_sharing(
  *,
  num_tasks,
  output_size,
  input_shape=None,
  trunk="mlp",
  width=64,
  depth=2,
  soft_lambda=1e-3,
  soft_norm="l2",
  soft_heads=False,
):
  """One network per task + λ·(pairwise parameter distances).

  model_kwargs: trunk, width, depth, soft_lambda (λ, default 1e-3), soft_norm
  (l2|squared|mean), soft_heads (penalise heads too).
  """
  del input_shape
  return SoftSharingNet(
    _trunk(trunk, width, depth),
    num_tasks,
    output_size,
    soft_lambda=soft_lambda,
    soft_norm=soft_norm,
    soft_heads=soft_heads,
  )
