"""The model interface (``MultiTaskModel``) and which models are layer-split networks."""

import inspect

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import models
from mtl_jax.models import base
from mtl_jax.models.conditioning import ConditionedNet
from mtl_jax.models.cross_stitch import CrossStitchNet
from mtl_jax.models.dselect_k import DSelectK
from mtl_jax.models.layer_split import LayerSplitNet
from mtl_jax.models.mmoe import MMoE
from mtl_jax.models.ple import PLE
from mtl_jax.models.soft_sharing import SoftSharingNet

T, OUT = 3, 4
EXPERT_MODELS = ("mmoe", "omoe", "dselect_k", "cgc", "ple")
# (name, model_kwargs, input shape of one task's batch): every registered model at its
# defaults, plus variants that move the shared/per-task boundary.
CASES = [(name, {}, (5, 8)) for name in models.names()] + [
  ("hard_sharing", {"num_shared": 1}, (5, 8)),
  ("hard_sharing", {"num_shared": 0}, (5, 8)),
  ("hard_sharing", {"trunk": "conv", "width": 4}, (5, 8, 8, 1)),
  ("split", {"depth": 3, "num_shared": 2}, (5, 8)),
  ("split", {"num_shared": 0}, (5, 8)),
  ("ple", {"shared_experts": 0}, (5, 8)),
  ("ple", {"num_levels": 3}, (5, 8)),
  ("cross_stitch", {"depth": 3}, (5, 8)),
  ("film", {"descriptor": "embedding", "condition_at": "all"}, (5, 8)),
]
IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw, _ in CASES]

# What GradNorm's W is for each registered model at its defaults (checkpoints and GradNorm
# runs depend on these keys).
LAST_SHARED = {
  "hard_sharing": ("layer_1",),
  "split": ("layer_0",),
  "independent": None,
  "soft_sharing": None,
  "cross_stitch": ("layer_1",),
  "mmoe": ("experts",),
  "omoe": ("experts",),
  "dselect_k": ("experts",),
  "cgc": ("level_0",),
  "ple": ("level_1",),
  "concat": ("layer_1",),
  "additive": ("layer_1",),
  "multiplicative": ("layer_1",),
  "film": ("layer_1",),
  "share_all_but_z": ("layer_1",),
}


def _build(name, kw, shape):
  m = models.get(name, num_tasks=T, output_size=OUT, input_shape=shape[1:], **kw)
  x = jax.random.normal(jax.random.PRNGKey(0), (T,) + shape)
  params = jax.jit(m.init)(jax.random.PRNGKey(1), x[0])
  return m, params, x


def _expects_split(m):
  return (
    isinstance(m, LayerSplitNet)
    and m.num_shared > 0
    and type(m).apply_task is LayerSplitNet.apply_task
  )


def _row(tree, i):
  return jax.tree.map(lambda p: p[i], tree)


@pytest.mark.parametrize("name", models.names())
def test_every_registered_model_implements_the_interface(name):
  m = models.get(name, num_tasks=T, output_size=OUT, input_shape=(8,))
  assert isinstance(m, models.MultiTaskModel)
  assert (m.num_tasks, m.output_size, m.name) == (T, OUT, name)
  if name in EXPERT_MODELS:
    assert not isinstance(m, LayerSplitNet)
    assert not hasattr(m, "layers")
    assert "trunk" not in models.accepted_kwargs(name)
    with pytest.raises(ValueError, match="trunk"):
      models.get(name, num_tasks=T, output_size=OUT, trunk="mlp")


def test_which_models_are_layer_split():
  split = {
    n
    for n in models.names()
    if isinstance(models.get(n, num_tasks=T, output_size=1), LayerSplitNet)
  }
  assert split == {"hard_sharing", "split", "independent", "soft_sharing"}
  assert models.MultiTaskNet is LayerSplitNet and base.MultiTaskNet is LayerSplitNet
  assert issubclass(LayerSplitNet, models.MultiTaskModel)
  for cls in (MMoE, DSelectK, PLE, CrossStitchNet, ConditionedNet):
    assert issubclass(cls, models.MultiTaskModel) and not issubclass(cls, LayerSplitNet)


@pytest.mark.parametrize("name,kw,shape", CASES, ids=IDS)
def test_representation_split_and_last_shared_path(name, kw, shape):
  m, params, x = _build(name, kw, shape)
  assert m.has_representation_split() == _expects_split(m)
  if not kw:
    assert m.has_representation_split() == (name in ("hard_sharing", "split"))
  path = m.last_shared_path()
  if not kw and name in LAST_SHARED:
    assert path == LAST_SHARED[name]
  if path is not None:
    node = params["shared"]
    for key in path:
      assert key in node, (path, list(node))
      node = node[key]
    assert jax.tree.leaves(node), f"{name}: {path} holds no parameters"
  else:
    assert not isinstance(m, LayerSplitNet) or m.num_shared == 0

  if m.has_representation_split():
    for i in range(T):
      task = _row(params["tasks"], i)
      z = m.represent(params["shared"], x[i])
      chex.assert_trees_all_close(
        m.apply_from_representation(task, z),
        m.apply_task(params["shared"], task, jnp.asarray(i), x[i]),
        atol=1e-6,
      )
    # And the representation is the shared trunk's output, not the input passed through.
    assert z.shape != x[T - 1].shape or not np.allclose(z, x[T - 1])
  else:
    with pytest.raises(ValueError, match=f"model {name!r}.*has_representation_split"):
      m.represent(params["shared"], x[0])
    with pytest.raises(ValueError, match=f"model {name!r}"):
      m.apply_from_representation(_row(params["tasks"], 0), x[0])


def test_interface_is_abstract_and_its_defaults():
  with pytest.raises(TypeError):
    models.MultiTaskModel(T, OUT, name="x")

  class Linear(models.MultiTaskModel):
    """y = x w_sh + b_t: the smallest model that implements the interface."""

    def init(self, rng, x):
      del rng
      shared = {"w": jnp.ones((x.shape[-1], self.output_size))}
      return {"shared": shared, "tasks": {"b": jnp.arange(float(self.num_tasks))[:, None]}}

    def apply_task(self, shared, task, task_id, x):
      del task_id
      return x @ shared["w"] + task["b"]

  m = Linear(T, 2, name="linear")
  x = jnp.ones((2, 5, 3))
  params = m.init(jax.random.PRNGKey(0), x[0])
  out = m.apply(params, x, jnp.array([2, 0]))
  np.testing.assert_allclose(out[0], 3.0 + 2.0)
  np.testing.assert_allclose(out[1], 3.0)
  assert float(m.regularizer(params)) == 0.0
  assert m.last_shared_path() is None and not m.has_representation_split()
  with pytest.raises(ValueError, match="model 'linear' \\(Linear\\)"):
    m.represent(params["shared"], x[0])


@pytest.mark.parametrize(
  "cls", [LayerSplitNet, SoftSharingNet, MMoE, DSelectK, PLE, CrossStitchNet, ConditionedNet]
)
def test_constructors_do_not_repeat_the_builders_defaults(cls):
  """Hyperparameter defaults live in the registered builders' signatures only."""
  with_default = [
    p.name
    for p in inspect.signature(cls).parameters.values()
    if p.default is not inspect.Parameter.empty and p.name != "name"
  ]
  assert with_default == []


def test_omoe_is_mmoe_with_one_shared_gate():
  x = jax.random.normal(jax.random.PRNGKey(0), (5, 6))
  om = models.get("omoe", num_tasks=3, output_size=2, num_experts=3, width=4)
  mm = models.get("mmoe", num_tasks=3, output_size=2, num_experts=3, width=4)
  p_om, p_mm = om.init(jax.random.PRNGKey(1), x), mm.init(jax.random.PRNGKey(1), x)
  assert "gate" in p_om["shared"] and "gate" not in p_om["tasks"]
  # Same experts, towers and heads; OMoE's gate is MMoE's task-0 gate, used by every task.
  chex.assert_trees_all_equal(p_om["shared"]["experts"], p_mm["shared"]["experts"])
  gate0 = jax.tree.map(lambda p: p[0], p_mm["tasks"]["gate"])
  chex.assert_trees_all_equal(p_om["shared"]["gate"], gate0)
  for k in range(3):
    task_om = jax.tree.map(lambda p, k=k: p[k], p_om["tasks"])
    task_mm = jax.tree.map(lambda p, k=k: p[k], p_mm["tasks"])
    task_mm["gate"] = gate0
    chex.assert_trees_all_close(
      om.apply_task(p_om["shared"], task_om, k, x), mm.apply_task(p_mm["shared"], task_mm, k, x)
    )
  assert models.count_params(p_mm) - models.count_params(p_om) == 2 * 6 * 3  # gate: no bias
