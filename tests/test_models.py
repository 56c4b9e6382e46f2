"""Stacked per-task parameters behave like T separately initialised networks."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import models
from mtl_jax.models.layers import Head


@pytest.mark.parametrize("trunk,shape", [("mlp", (6, 64)), ("conv", (6, 8, 8, 1))])
@pytest.mark.parametrize("name", ["hard_sharing", "independent"])
def test_shapes_and_finiteness(name, trunk, shape):
  m = models.get(name, num_tasks=3, output_size=10, trunk=trunk, width=16)
  x = jax.random.normal(jax.random.PRNGKey(0), (2,) + shape)
  # Jitted: one compile instead of one per eager op keeps the suite fast.
  params = jax.jit(m.init)(jax.random.PRNGKey(1), x[0])
  out = jax.jit(m.apply)(params, x, jnp.array([2, 0]))
  chex.assert_shape(out, (2, 6, 10))
  chex.assert_tree_all_finite(out)
  for leaf in jax.tree.leaves(params["tasks"]):
    assert leaf.shape[0] == 3
  if name == "independent":
    assert not jax.tree.leaves(params["shared"])


def test_stacked_heads_equal_heads_initialised_and_applied_one_by_one():
  t, d, o = 5, 12, 4
  m = models.get("hard_sharing", num_tasks=t, output_size=o, width=d, depth=1)
  x = jax.random.normal(jax.random.PRNGKey(0), (t, 7, 9))
  params = m.init(jax.random.PRNGKey(3), x[0])
  # Rebuild the keys init used for the heads and initialise T heads one at a time.
  keys = jax.random.split(jax.random.PRNGKey(3), 2)
  head_keys = jax.random.split(keys[-1], t)
  h = m.layers[0].apply({"params": params["shared"]["layer_0"]}, x[0])
  head = Head(o)
  for i in range(t):
    p_i = head.init(head_keys[i], h)["params"]
    chex.assert_trees_all_close(p_i, jax.tree.map(lambda p, i=i: p[i], params["tasks"]["head"]))
  out = m.apply(params, x, jnp.arange(t))
  for i in range(t):
    h_i = m.layers[0].apply({"params": params["shared"]["layer_0"]}, x[i])
    p_i = jax.tree.map(lambda p, i=i: p[i], params["tasks"]["head"])
    chex.assert_trees_all_close(out[i], head.apply({"params": p_i}, h_i), atol=1e-6)


def test_independent_equals_separate_networks():
  t = 3
  m = models.get("independent", num_tasks=t, output_size=2, width=8, depth=2)
  x = jax.random.normal(jax.random.PRNGKey(0), (t, 4, 5))
  params = m.init(jax.random.PRNGKey(0), x[0])
  out = m.apply(params, x, jnp.array([1, 2, 0]))
  for k, i in enumerate([1, 2, 0]):
    p_i = jax.tree.map(lambda p, i=i: p[i], params["tasks"])
    h = x[k]
    for j, layer in enumerate(m.layers):
      h = layer.apply({"params": p_i[f"layer_{j}"]}, h)
    chex.assert_trees_all_close(out[k], m.head.apply({"params": p_i["head"]}, h), atol=1e-6)


def test_gradient_of_gathered_tasks_scatters_to_the_stack():
  m = models.get("hard_sharing", num_tasks=4, output_size=1, width=4, depth=1)
  x = jnp.ones((2, 3, 2))
  params = m.init(jax.random.PRNGKey(0), x[0])
  g = jax.grad(lambda p: m.apply(p, x, jnp.array([3, 3])).sum())(params)
  norms = np.asarray(jnp.abs(g["tasks"]["head"]["Dense_0"]["kernel"]).sum(axis=(1, 2)))
  assert norms[3] > 0 and np.all(norms[:3] == 0)


def test_num_shared_dial_bounds():
  with pytest.raises(ValueError, match="num_shared"):
    models.get("hard_sharing", num_tasks=2, output_size=1, depth=2, num_shared=3)
  with pytest.raises(ValueError, match="unknown model 'nope'.*hard_sharing"):
    models.get("nope")


def test_param_counts_scale_with_tasks():
  small = models.get("independent", num_tasks=2, output_size=1, width=8)
  big = models.get("independent", num_tasks=20, output_size=1, width=8)
  x = jnp.ones((1, 3))
  c2 = models.count_params(jax.eval_shape(small.init, jax.random.PRNGKey(0), x))
  c20 = models.count_params(jax.eval_shape(big.init, jax.random.PRNGKey(0), x))
  assert c20 == 10 * c2


def test_misspelled_model_kwarg_is_an_error():
  with pytest.raises(ValueError, match=r"model 'hard_sharing': unknown model_kwargs \['widht'\]"):
    models.get("hard_sharing", num_tasks=2, output_size=1, widht=8)
  # What the library passes about the task set is taken only by builders that use it.
  m = models.get("hard_sharing", num_tasks=2, output_size=1, descriptors=None, input_shape=(3,))
  assert m.num_tasks == 2


def test_baseline_takes_the_kwargs_it_understands():
  from experiments.configs import synthetic
  from mtl_jax import data, experiment

  config = synthetic.get_config("smoke,model=mmoe")
  ts = data.get_taskset("mmoe_regression", num_tasks=2, dim=4, n_train=8, n_test=8)
  base = experiment.build_model(config, ts, "independent")
  assert [layer.features for layer in base.layers] == [64, 64]
  main = experiment.build_model(config, ts)
  assert main.name == "mmoe"
