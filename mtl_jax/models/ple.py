"""Progressive Layered Extraction and its one-level form, Customized Gate Control.

Tang et al., "Progressive Layered Extraction (PLE): A Novel Multi-Task Learning (MTL) Model
for Personalized Recommendations", RecSys 2020.

**CGC** (one level): task k has m_t experts of its own and all tasks share m_s experts;
task k's gate mixes its own and the shared experts,
f^k(x) = Σ_j g^k(x)_j S^k(x)_j with S^k = [E_k,1..m_t, E_s,1..m_s], g^k = softmax(W_k x);
then tower + head. **PLE** stacks L CGC levels: level l's task-k output is task k's input
at level l+1, and at every non-final level a *shared gate* over ALL T·m_t + m_s experts
(with the shared input) makes the next level's shared input; the final level has no
shared gate.

Where parameters live (what each task's loss depends on, not what the paper calls them):

* final level (CGC's only level): task k's experts, gate, tower and head are θ^k
  (``params["tasks"]``: ``experts [T, m_t, ...]``, ``gate``, ``tower``, ``head``); its
  shared experts are θ^sh (``params["shared"]["level_{L-1}"]``).
* non-final levels: *everything* is θ^sh (``params["shared"]["level_l"]`` holds
  ``task_experts [T, m_t, ...]``, ``shared_experts [m_s, ...]``, ``task_gates [T, ...]``,
  ``shared_gate``), because the shared gate feeds every task's experts to every task: task
  j's loss depends on task k's level-l experts, so per-task gradient methods must treat
  them as shared.

Computation, without a Python loop over T: a non-final level runs every task's expert
stack with ``jax.vmap`` over the ``[T, m_t, ...]`` stack (and every task gate over
``[T, ...]``), keeping all T task paths ``[T, B, F]`` plus the shared path ``[B, F]``.
Each sampled task's forward pass (``apply_task``, vmapped over the K sampled tasks, each
with its own inputs) therefore costs (L−1)·(T·m_t + m_s) + (m_t + m_s) expert MLPs: linear
in T per sampled task, O(K·T) per step — fine for the handful of tasks PLE targets (CGC,
L = 1, costs m_t + m_s whatever T). The final level picks task i's path with a gather.
"""

import jax
import jax.numpy as jnp

from mtl_jax.models import register
from mtl_jax.models.base import MultiTaskModel
from mtl_jax.models.experts import MLP, Gate, apply_stack, mix
from mtl_jax.models.layers import Head, init_stack


def _first(tree):
  return jax.tree.map(lambda p: p[0], tree)


class PLE(MultiTaskModel):
  """L CGC levels (L = 1 is CGC) + per-task towers and heads.

  ``task_experts`` = m_t per task, ``shared_experts`` = m_s; ``expert_widths`` /
  ``tower_widths``: the hidden widths of every expert's and each task's tower MLP.
  Defaults: the ``ple`` and ``cgc`` builders.
  """

  def __init__(
    self,
    num_tasks: int,
    output_size: int,
    *,
    num_levels: int,
    task_experts: int,
    shared_experts: int,
    expert_widths,
    tower_widths,
    name: str = "ple",
  ):
    if num_levels < 1 or task_experts < 1 or shared_experts < 0:
      raise ValueError(
        f"need num_levels >= 1, task_experts >= 1, shared_experts >= 0; got "
        f"{num_levels}, {task_experts}, {shared_experts}"
      )
    super().__init__(num_tasks, output_size, name=name)
    self.num_levels = num_levels
    self.m_t, self.m_s = task_experts, shared_experts
    self.expert = MLP(tuple(expert_widths))
    self.task_gate = Gate(task_experts + shared_experts)
    self.shared_gate = Gate(num_tasks * task_experts + shared_experts)
    self.tower = MLP(tuple(tower_widths))
    self.head = Head(output_size)

  # --- one level -------------------------------------------------------------------------
  def _task_experts(self, stack, x_B):
    """One task's ``[m_t, ...]`` experts on its input: ``[m_t, B, F]``."""
    return apply_stack(self.expert, stack, x_B)

  def _shared_experts(self, stack, x_B):
    if self.m_s == 0:
      return jnp.zeros((0, x_B.shape[0], self.expert.features[-1]), x_B.dtype)
    return apply_stack(self.expert, stack, x_B)

  def _inner_level(self, p, xt_TxB, xs_B):
    """A non-final level over all T task paths: ``([T, B, D], [B, D]) -> ([T, B, F], [B, F])``."""
    e_t = jax.vmap(self._task_experts)(p["task_experts"], xt_TxB)  # [T, m_t, B, F]
    e_s = self._shared_experts(p.get("shared_experts"), xs_B)  # [m_s, B, F]

    def task_out(gate_p, e_k, x_k):
      g = self.task_gate.apply({"params": gate_p}, x_k)
      return mix(g, jnp.concatenate([e_k, e_s], 0))

    new_t = jax.vmap(task_out)(p["task_gates"], e_t, xt_TxB)
    every = jnp.concatenate([e_t.reshape((-1,) + e_t.shape[2:]), e_s], 0)
    new_s = mix(self.shared_gate.apply({"params": p["shared_gate"]}, xs_B), every)
    return new_t, new_s

  # --- init / apply ----------------------------------------------------------------------
  def init(self, rng: jax.Array, x: jax.Array) -> dict:
    t = self.num_tasks
    shared = {}
    keys = jax.random.split(rng, self.num_levels + 1)
    x = x.reshape(x.shape[0], -1)
    xt, xs = jnp.broadcast_to(x, (t,) + x.shape), x
    for level in range(self.num_levels):
      k_te, k_se, k_tg, k_sg = jax.random.split(keys[level], 4)
      # Shapes only depend on the input's shape: initialise from task 0's path.
      te = jax.tree.map(
        lambda a: a.reshape((t, self.m_t) + a.shape[1:]),
        init_stack(self.expert, k_te, t * self.m_t, xt[0]),
      )
      p = {"shared_experts": init_stack(self.expert, k_se, self.m_s, xs)} if self.m_s else {}
      tg = init_stack(self.task_gate, k_tg, t, xt[0])
      if level < self.num_levels - 1:
        p.update(
          task_experts=te, task_gates=tg, shared_gate=self.shared_gate.init(k_sg, xs)["params"]
        )
        shared[f"level_{level}"] = p
        xt, xs = self._inner_level(p, xt, xs)
      else:
        shared[f"level_{level}"] = p
        tasks = {"experts": te, "gate": tg}
    k_tower, k_head = jax.random.split(keys[-1])
    h = self.expert.apply({"params": _first(_first(tasks["experts"]))}, xt[0])
    tasks["tower"] = init_stack(self.tower, k_tower, t, h)
    h = self.tower.apply({"params": _first(tasks["tower"])}, h)
    tasks["head"] = init_stack(self.head, k_head, t, h)
    return {"shared": shared, "tasks": tasks}

  def task_input(self, shared: dict, task_id: jax.Array, x: jax.Array):
    """Task ``task_id``'s and the shared input to the final level: ``([B, F], [B, F])``."""
    x = x.reshape(x.shape[0], -1)
    xt, xs = jnp.broadcast_to(x, (self.num_tasks,) + x.shape), x
    for level in range(self.num_levels - 1):
      xt, xs = self._inner_level(shared[f"level_{level}"], xt, xs)
    return xt[task_id], xs

  def apply_task(self, shared: dict, task: dict, task_id: jax.Array, x: jax.Array) -> jax.Array:
    x_k, x_s = self.task_input(shared, task_id, x)
    last = shared[f"level_{self.num_levels - 1}"]
    experts = jnp.concatenate(
      [
        self._task_experts(task["experts"], x_k),
        self._shared_experts(last.get("shared_experts"), x_s),
      ],
      0,
    )
    f = mix(self.task_gate.apply({"params": task["gate"]}, x_k), experts)
    h = self.tower.apply({"params": task["tower"]}, f)
    return self.head.apply({"params": task["head"]}, h)

  def last_shared_path(self) -> tuple[str, ...] | None:
    """The last level with shared parameters: the final level's shared experts if m_s > 0,
    else the level before it (all of a non-final level is shared); None for CGC without
    shared experts."""
    if self.m_s == 0 and self.num_levels == 1:
      return None
    return (f"level_{self.num_levels - 1}",) if self.m_s else (f"level_{self.num_levels - 2}",)


def _build(
  num_levels,
  name,
  num_tasks,
  output_size,
  width,
  depth,
  task_experts,
  shared_experts,
  tower_width,
  tower_depth,
):
  return PLE(
    num_tasks,
    output_size,
    num_levels=num_levels,
    task_experts=task_experts,
    shared_experts=shared_experts,
    expert_widths=(int(width),) * int(depth),
    tower_widths=(int(tower_width),) * int(tower_depth),
    name=name,
  )


@register("ple")
def ple(
  *,
  num_tasks,
  output_size,
  input_shape=None,
  num_levels=2,
  width=32,
  depth=1,
  task_experts=2,
  shared_experts=2,
  tower_width=16,
  tower_depth=1,
):
  """PLE: ``num_levels`` (2) CGC levels with a shared gate between levels.

  model_kwargs: num_levels, task_experts (m_t, 2 per task), shared_experts (m_s, 2),
  width / depth (each expert's MLP: 32 × 1), tower_width / tower_depth (16 × 1).
  """
  del input_shape
  return _build(
    num_levels,
    "ple",
    num_tasks,
    output_size,
    width,
    depth,
    task_experts,
    shared_experts,
    tower_width,
    tower_depth,
  )
