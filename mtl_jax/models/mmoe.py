"""Multi-gate Mixture-of-Experts (Ma et al., "Modeling Task Relationships in Multi-task
Learning with Multi-gate Mixture-of-Experts", KDD 2018).

    f^k(x) = Σ_e g^k(x)_e f_e(x),   g^k(x) = softmax(W_gk x),   y_k = h^k(f^k(x))

θ^sh: n experts f_e (small MLPs, one stack with a leading expert axis). θ^k: task k's gate
W_gk ``[d, n]``, its tower h^k (an MLP) and its linear head, all stacked on the task axis.
Each task's forward pass runs every expert once and mixes them with its own gate; tasks
choose (softly) which experts to share, so the model learns how related the tasks are.
"""

import jax

from mtl_jax.models import register
from mtl_jax.models.base import MultiTaskModel
from mtl_jax.models.experts import MLP, Gate, apply_stack, mix
from mtl_jax.models.layers import Head, init_stack


class MMoE(MultiTaskModel):
  """``params["shared"] = {"experts": [n, ...]}``; ``params["tasks"] = {"gate", "tower",
  "head"}`` each ``[T, ...]``.

  ``expert_widths`` / ``tower_widths``: the hidden widths of each expert's and each
  task's tower MLP. Defaults: the ``mmoe`` builder.
  """

  def __init__(
    self,
    num_tasks: int,
    output_size: int,
    *,
    num_experts: int,
    expert_widths,
    tower_widths,
    name: str = "mmoe",
  ):
    if num_experts < 1:
      raise ValueError(f"num_experts must be >= 1, got {num_experts}")
    super().__init__(num_tasks, output_size, name=name)
    self.num_experts = num_experts
    self.expert = MLP(tuple(expert_widths))
    self.gate = Gate(num_experts)
    self.tower = MLP(tuple(tower_widths))
    self.head = Head(output_size)

  def init(self, rng: jax.Array, x: jax.Array) -> dict:
    k_exp, k_gate, k_tower, k_head = jax.random.split(rng, 4)
    t = self.num_tasks
    experts = init_stack(self.expert, k_exp, self.num_experts, x)
    h = apply_stack(self.expert, experts, x)[0]
    tower = init_stack(self.tower, k_tower, t, h)
    h = self.tower.apply({"params": jax.tree.map(lambda p: p[0], tower)}, h)
    tasks = {
      "gate": init_stack(self.gate, k_gate, t, x),
      "tower": tower,
      "head": init_stack(self.head, k_head, t, h),
    }
    return {"shared": {"experts": experts}, "tasks": tasks}

  def gates(self, task: dict, x: jax.Array) -> jax.Array:
    """Task gate g^k(x) ``[B, n]`` (rows sum to 1) for one task's params."""
    return self.gate.apply({"params": task["gate"]}, x)

  def apply_task(self, shared: dict, task: dict, task_id: jax.Array, x: jax.Array) -> jax.Array:
    del task_id
    f = mix(self.gates(task, x), apply_stack(self.expert, shared["experts"], x))
    h = self.tower.apply({"params": task["tower"]}, f)
    return self.head.apply({"params": task["head"]}, h)

  def last_shared_path(self) -> tuple[str, ...]:
    return ("experts",)


def _widths(width, depth):
  return (int(width),) * int(depth)


@register("mmoe")
def mmoe(
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
  """MMoE: n shared expert MLPs, one softmax gate + tower + head per task.

  model_kwargs: num_experts (4), width / depth (each expert's MLP: 32 × 1),
  tower_width / tower_depth (16 × 1).
  """
  del input_shape
  return MMoE(
    num_tasks,
    output_size,
    num_experts=num_experts,
    expert_widths=_widths(width, depth),
    tower_widths=_widths(tower_width, tower_depth),
  )
