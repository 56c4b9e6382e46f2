"""Task descriptors and conditioning layers; concatenation ≡ additive conditioning."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import models
from mtl_jax.models import conditioning as cond
from mtl_jax.models.descriptors import PARAM_KEY, TaskDescriptor

H, D, F = 5, 3, 4


@pytest.mark.parametrize("dense_z", [False, True])
def test_concat_equals_additive_both_ways(dense_z):
  """[h, z] W + b = h W_h + b + z W_z with W = [W_h; W_z]: same outputs, both mappings."""
  h = jax.random.normal(jax.random.PRNGKey(0), (6, H))
  z = jax.random.normal(jax.random.PRNGKey(1), (D,)) if dense_z else jax.nn.one_hot(1, D)
  for activate in (False, True):
    concat, additive = cond.ConcatDense(F, activate), cond.AdditiveDense(F, activate)
    p_c = concat.init(jax.random.PRNGKey(2), h, z)["params"]
    p_a = cond.concat_to_additive(p_c, H)
    chex.assert_trees_all_equal_shapes(p_a, additive.init(jax.random.PRNGKey(3), h, z)["params"])
    chex.assert_trees_all_close(
      additive.apply({"params": p_a}, h, z), concat.apply({"params": p_c}, h, z), atol=1e-6
    )
    # And back: an independently initialised additive layer as a concat layer.
    p_a2 = additive.init(jax.random.PRNGKey(4), h, z)["params"]
    p_c2 = cond.additive_to_concat(p_a2)
    chex.assert_trees_all_close(
      concat.apply({"params": p_c2}, h, z), additive.apply({"params": p_a2}, h, z), atol=1e-6
    )
    chex.assert_trees_all_close(cond.concat_to_additive(p_c2, H), p_a2)


def test_one_hot_additive_is_a_per_task_bias():
  h = jax.random.normal(jax.random.PRNGKey(0), (4, H))
  layer = cond.AdditiveDense(F, activate=False)
  p = layer.init(jax.random.PRNGKey(1), h, jnp.zeros(D))["params"]
  for i in range(D):
    base = h @ p["h"]["kernel"] + p["h"]["bias"] + p["z"]["kernel"][i]
    chex.assert_trees_all_close(
      layer.apply({"params": p}, h, jax.nn.one_hot(i, D)), base, atol=1e-6
    )


def test_multiplicative_and_film_start_as_the_plain_layer():
  h = jax.random.normal(jax.random.PRNGKey(0), (4, H))
  z = jax.random.normal(jax.random.PRNGKey(1), (D,))
  for layer in (cond.MultiplicativeDense(F, False), cond.FiLMDense(F, False)):
    p = layer.init(jax.random.PRNGKey(2), h, z)["params"]
    plain = h @ p["h"]["kernel"] + p["h"]["bias"]
    chex.assert_trees_all_close(layer.apply({"params": p}, h, z), plain, atol=1e-6)


def test_descriptors():
  t = 4
  one = TaskDescriptor("onehot", t)
  chex.assert_trees_all_close(one({}, jnp.array(2)), jax.nn.one_hot(2, t))
  emb = TaskDescriptor("embedding", t, embed_dim=6)
  p = emb.init(jax.random.PRNGKey(0))
  chex.assert_shape(p[PARAM_KEY]["embedding"], (t, 6))
  chex.assert_trees_all_close(emb(p, jnp.array(3)), p[PARAM_KEY]["embedding"][3])
  meta = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
  md = TaskDescriptor("metadata", t, metadata=meta, standardize=True)
  z = np.stack([np.asarray(md({}, jnp.array(i))) for i in range(t)])
  np.testing.assert_allclose(z[:, 0], (meta[:, 0] - 1.5) / meta[:, 0].std(), rtol=1e-6)
  np.testing.assert_allclose(z[:, 1], 0.0)  # a constant column carries no information
  raw = TaskDescriptor("metadata", t, metadata=meta, standardize=False)
  np.testing.assert_allclose(raw({}, jnp.array(1)), meta[1])
  with pytest.raises(ValueError, match="needs a task set with per-task descriptors"):
    TaskDescriptor("metadata", t)
  with pytest.raises(ValueError, match="unknown descriptor"):
    TaskDescriptor("nope", t)
  # No silent second copy of the builders' defaults: what a kind needs must be given.
  with pytest.raises(ValueError, match="needs embed_dim"):
    TaskDescriptor("embedding", t)
  with pytest.raises(ValueError, match="needs standardize"):
    TaskDescriptor("metadata", t, metadata=meta)


@pytest.mark.parametrize(
  "name,descriptor,condition_at",
  [
    ("concat", "onehot", "input"),
    ("additive", "embedding", "all"),
    ("multiplicative", "metadata", "input"),
    ("film", "metadata", "all"),
    ("share_all_but_z", "embedding", "input"),
    ("share_all_but_z", "onehot", "all"),
  ],
)
def test_conditioned_models(name, descriptor, condition_at):
  t = 3
  meta = np.arange(2 * t, dtype=np.float32).reshape(t, 2) ** 2
  m = models.get(
    name,
    num_tasks=t,
    output_size=2,
    width=8,
    depth=2,
    descriptor=descriptor,
    embed_dim=4,
    condition_at=condition_at,
    descriptors=meta,
  )
  x = jax.random.normal(jax.random.PRNGKey(0), (t, 5, 7))
  params = jax.jit(m.init)(jax.random.PRNGKey(1), x[0])
  apply = jax.jit(m.apply)
  out = apply(params, x, jnp.arange(t))
  chex.assert_shape(out, (t, 5, 2))
  chex.assert_tree_all_finite(out)
  assert (PARAM_KEY in params["shared"]) == (descriptor == "embedding")
  conditioned = [isinstance(layer, tuple(cond.LAYERS.values())) for layer in m.layers]
  assert conditioned == ([True, True] if condition_at == "all" else [True, False])
  if name == "share_all_but_z":
    assert params["tasks"] == {} and "head" in params["shared"]
    # Same inputs, different tasks: outputs differ only through z_i.
    same = apply(params, jnp.broadcast_to(x[0], x.shape), jnp.arange(t))
    assert not np.allclose(same[0], same[1])
  else:
    assert set(params["tasks"]) == {"head"}


def test_conditioned_model_needs_an_mlp_trunk():
  with pytest.raises(ValueError, match="MLP trunk"):
    models.get("film", num_tasks=2, output_size=1, trunk="conv")
  with pytest.raises(ValueError, match="condition_at"):
    models.get("film", num_tasks=2, output_size=1, condition_at="middle")
