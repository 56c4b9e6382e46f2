"""Customized Gate Control (Tang et al., RecSys 2020, §4.2): PLE with a single level.

Task k mixes its own m_t experts (θ^k) and the m_s shared experts (θ^sh) with its own
softmax gate, then a tower and a head. See :mod:`mtl_jax.models.ple` for the layout;
unlike MMoE, task-specific experts let unrelated tasks stop competing for shared experts
(the "seesaw phenomenon").
"""

from mtl_jax.models import register
from mtl_jax.models.ple import _build


@register("cgc")
def cgc(
  *,
  num_tasks,
  output_size,
  input_shape=None,
  width=32,
  depth=1,
  task_experts=2,
  shared_experts=2,
  tower_width=16,
  tower_depth=1,
):
  """CGC: per-task + shared experts, one gate per task.

  model_kwargs: task_experts (m_t, 2 per task), shared_experts (m_s, 2), width / depth
  (each expert's MLP: 32 × 1), tower_width / tower_depth (16 × 1).
  """
  del input_shape
  return _build(
    1,
    "cgc",
    num_tasks,
    output_size,
    width,
    depth,
    task_experts,
    shared_experts,
    tower_width,
    tower_depth,
  )
