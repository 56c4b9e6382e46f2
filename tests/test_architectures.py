"""Every registered architecture trains end-to-end; MMoE, CGC/PLE, cross-stitch specifics."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import models
from mtl_jax.data import get_taskset
from mtl_jax.data.sampling import DeviceData
from mtl_jax.models.cross_stitch import stitch_init
from mtl_jax.train import make_chunk, make_optimizer, make_train_step

T = 3
KW = {"width": 8, "depth": 1}


def _taskset():
  return get_taskset("mmoe_regression", num_tasks=T, dim=6, n_train=64, n_test=16)


@pytest.mark.parametrize("name", models.names())
def test_trains_end_to_end(name):
  ts = _taskset()
  data = DeviceData.from_taskset(ts)
  model = models.get(name, num_tasks=T, output_size=ts.output_size, **KW)
  params = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.asarray(ts.x_train[0, :4]))
  for leaf in jax.tree.leaves(params["tasks"]):
    assert leaf.shape[0] == T
  init_state, step = make_train_step(
    model, data, make_optimizer("adam", 1e-2), "equal", tasks_per_batch=T, batch_size=16
  )
  run = make_chunk(step, 25)
  state = init_state(jax.random.PRNGKey(1), params)
  losses = []
  for _ in range(3):
    state, m = run(state)
    losses.append(float(m["loss"]))
  chex.assert_tree_all_finite(state.params)
  chex.assert_trees_all_equal_structs(state.params, params)
  assert losses[-1] < 0.8 * losses[0], (name, losses)
  out = jax.jit(model.apply)(state.params, data.x_test[:, :5], jnp.arange(T))
  chex.assert_shape(out, (T, 5, ts.output_size))
  chex.assert_tree_all_finite(out)


@pytest.mark.parametrize("name", models.names())
def test_program_size_does_not_grow_with_tasks(name):
  """No Python loop over tasks: the traced forward pass has the same ops for T = 2 and 7."""
  sizes = []
  for t in (2, 7):
    model = models.get(name, num_tasks=t, output_size=2, **KW)
    x = jnp.ones((t, 3, 5))
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0), x[0])
    jaxpr = jax.make_jaxpr(model.apply)(params, x, jnp.arange(t))
    sizes.append(len(jaxpr.eqns))
  assert sizes[0] == sizes[1], sizes


def test_mmoe_gates_sum_to_one_and_mix_the_experts():
  model = models.get("mmoe", num_tasks=T, output_size=1, num_experts=5, width=4)
  x = jax.random.normal(jax.random.PRNGKey(0), (7, 6))
  params = model.init(jax.random.PRNGKey(1), x)
  chex.assert_shape(params["shared"]["experts"]["Dense_0"]["kernel"], (5, 6, 4))
  chex.assert_shape(params["tasks"]["gate"]["Dense_0"]["kernel"], (T, 6, 5))
  g = jax.jit(jax.vmap(model.gates, in_axes=(0, None)))(params["tasks"], x)
  chex.assert_shape(g, (T, 7, 5))
  np.testing.assert_allclose(g.sum(-1), 1.0, rtol=1e-6)
  assert np.all(g >= 0)
  # One expert and a constant gate: MMoE is hard sharing with a tower.
  one = models.get("mmoe", num_tasks=T, output_size=1, num_experts=1, width=4)
  p1 = one.init(jax.random.PRNGKey(1), x)
  np.testing.assert_allclose(one.gates(jax.tree.map(lambda p: p[0], p1["tasks"]), x), 1.0)


def test_cross_stitch_init_and_coupling():
  np.testing.assert_allclose(stitch_init(2), [[0.9, 0.1], [0.1, 0.9]], rtol=1e-6)
  a4 = stitch_init(4)
  np.testing.assert_allclose(np.diag(a4), 0.9, rtol=1e-6)
  np.testing.assert_allclose(a4[0, 1:], 0.1 / 3, rtol=1e-6)
  np.testing.assert_allclose(a4.sum(1), 1.0, rtol=1e-6)
  np.testing.assert_allclose(stitch_init(1), [[1.0]])
  model = models.get("cross_stitch", num_tasks=T, output_size=1, width=4, depth=2)
  x = jax.random.normal(jax.random.PRNGKey(0), (T, 5, 6))
  params = model.init(jax.random.PRNGKey(1), x[0])
  for i in range(2):
    np.testing.assert_allclose(params["shared"][f"layer_{i}"]["alpha"], stitch_init(T))
  # Identity α: task i's output is its own network alone (no cross-talk).
  eye = jax.tree_util.tree_map_with_path(
    lambda path, p: jnp.eye(T) if path[-1].key == "alpha" else p, params
  )
  out = jax.jit(model.apply)(eye, x, jnp.arange(T))
  ind = models.get("independent", num_tasks=T, output_size=1, width=4, depth=2)
  p_ind = {
    "shared": {},
    "tasks": {
      **{k: v["net"] for k, v in params["shared"].items()},
      "head": params["tasks"]["head"],
    },
  }
  chex.assert_trees_all_close(out, jax.jit(ind.apply)(p_ind, x, jnp.arange(T)), atol=1e-6)
  # Default α: every task's output depends on every network.
  g = jax.jit(jax.grad(lambda p: model.apply(p, x[:1], jnp.array([0])).sum()))(params)
  assert np.all(np.abs(g["shared"]["layer_0"]["net"]["Dense_0"]["kernel"]).sum((1, 2)) > 0)


@pytest.mark.parametrize("name,levels", [("cgc", 1), ("ple", 2)])
def test_cgc_ple_layout_and_coupling(name, levels):
  model = models.get(name, num_tasks=T, output_size=1, task_experts=2, shared_experts=1, width=4)
  x = jax.random.normal(jax.random.PRNGKey(0), (T, 5, 6))
  params = jax.jit(model.init)(jax.random.PRNGKey(1), x[0])
  assert set(params["shared"]) == {f"level_{i}" for i in range(levels)}
  d_in = 6 if levels == 1 else 4  # the final level reads the input or the previous level
  chex.assert_shape(params["tasks"]["experts"]["Dense_0"]["kernel"], (T, 2, d_in, 4))
  chex.assert_shape(params["tasks"]["gate"]["Dense_0"]["kernel"], (T, d_in, 3))
  if levels > 1:
    lvl = params["shared"]["level_0"]
    chex.assert_shape(lvl["task_experts"]["Dense_0"]["kernel"], (T, 2, 6, 4))
    chex.assert_shape(lvl["shared_gate"]["Dense_0"]["kernel"], (6, T * 2 + 1))
  # Task 0's loss reaches task 2's level-0 experts only through PLE's shared gate.
  out, g = jax.jit(
    lambda p: (
      model.apply(p, x, jnp.arange(T)),
      jax.grad(lambda q: model.apply(q, x[:1], jnp.array([0])).sum())(p),
    )
  )(params)
  if levels > 1:
    other = g["shared"]["level_0"]["task_experts"]["Dense_0"]["kernel"][2]
    assert float(jnp.abs(other).sum()) > 0
  chex.assert_shape(out, (T, 5, 1))
