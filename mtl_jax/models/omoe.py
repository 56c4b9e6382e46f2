"""One-gate Mixture-of-Experts (OMoE), the baseline of Ma et al. (KDD 2018) for MMoE.

    f(x) = Σ_e g(x)_e f_e(x),   g(x) = softmax(W_g x),   y_k = h^k(f(x))

Like :class:`~mtl_jax.models.mmoe.MMoE`, but with ONE gate W_g shared by every task
(``params["shared"] = {"experts", "gate"}``), so all tasks see the same mixture of
experts; only the towers and heads are per task. Comparing OMoE with MMoE isolates what
per-task gates add.
"""

import jax

from mtl_jax.models import register
from mtl_jax.models.experts import apply_stack, mix
from mtl_jax.models.mmoe import MMoE, _widths


class OMoE(MMoE):
  """MMoE with a single gate in ``params["shared"]["gate"]`` (no task axis)."""

  def init(self, rng: jax.Array, x: jax.Array) -> dict:
    params = super().init(rng, x)
    gate = params["tasks"].pop("gate")
    params["shared"]["gate"] = jax.tree.map(lambda p: p[0], gate)  # one gate for all
    return params

  def apply_task(self, shared: dict, task: dict, task_id: jax.Array, x: jax.Array) -> jax.Array:
    del task_id
    g = self.gate.apply({"params": shared["gate"]}, x)
    f = mix(g, apply_stack(self.expert, shared["experts"], x))
    h = self.tower.apply({"params": task["tower"]}, f)
    return self.head.apply({"params": task["head"]}, h)


@register("omoe")
def omoe(
  *,
  num_tasks,
  output_size,
  input_shape=None,
  width=32,
  depth=1,
  num_experts=4,
  tower_width=16,
  tower_depth=1,
):
  """OMoE: n shared expert MLPs mixed by ONE shared softmax gate; a tower + head per task.

  model_kwargs as ``mmoe``: num_experts (4), width / depth (each expert: 32 × 1),
  tower_width / tower_depth (16 × 1).
  """
  del input_shape
  return OMoE(
    num_tasks,
    output_size,
    num_experts=num_experts,
    expert_widths=_widths(width, depth),
    tower_widths=_widths(tower_width, tower_depth),
    name="omoe",
  )
