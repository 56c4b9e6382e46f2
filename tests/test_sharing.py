"""The sharing dial (θ^sh / θ^i split) and soft parameter sharing."""

import functools
import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import models, sharing
from mtl_jax.data import get_taskset
from mtl_jax.data.sampling import DeviceData
from mtl_jax.train import make_chunk, make_optimizer, make_train_step

T = 3


def _x():
  return jax.random.normal(jax.random.PRNGKey(0), (T, 4, 6))


def _build(name, **kw):
  m = models.get(name, num_tasks=T, output_size=2, width=8, depth=2, **kw)
  return m, m.init(jax.random.PRNGKey(1), _x()[0])


def test_split_merge_and_counts():
  _, params = _build("split", num_shared=1)
  shared, tasks = sharing.split_params(params)
  assert set(shared) == {"layer_0"} and set(tasks) == {"layer_1", "head"}
  chex.assert_trees_all_equal(sharing.merge_params(shared, tasks), params)
  c = sharing.count_params(params)
  assert c["shared"] == 6 * 8 + 8
  assert c["per_task"] == (8 * 8 + 8) + (8 * 2 + 2)
  assert c["task_specific"] == T * c["per_task"]
  assert c["total"] == models.count_params(params)


def test_dial_k0_is_independent_and_k_all_is_hard_sharing():
  x, ids = _x(), jnp.array([2, 0, 1])
  k0, p_k0 = _build("hard_sharing", num_shared=0)
  ind, p_ind = _build("independent")
  chex.assert_trees_all_equal_structs(p_k0, p_ind)
  chex.assert_trees_all_close(k0.apply(p_ind, x, ids), ind.apply(p_ind, x, ids))
  kall, p_kall = _build("split", num_shared=2)
  hard, p_hard = _build("hard_sharing")
  chex.assert_trees_all_equal_structs(p_kall, p_hard)
  chex.assert_trees_all_close(kall.apply(p_hard, x, ids), hard.apply(p_hard, x, ids))


def test_untied_copies_of_a_shared_layer_compute_the_same_function():
  x, ids = _x(), jnp.array([2, 0, 1])
  hard, p_hard = _build("hard_sharing")
  ind, _ = _build("independent")
  p_untied = sharing.to_tasks(p_hard, ["layer_0", "layer_1"], T)
  chex.assert_trees_all_close(ind.apply(p_untied, x, ids), hard.apply(p_hard, x, ids))
  one, _ = _build("split", num_shared=1)
  p_one = sharing.to_shared(p_untied, ["layer_0"])
  chex.assert_trees_all_close(one.apply(p_one, x, ids), hard.apply(p_hard, x, ids), atol=1e-6)


def _tree():
  a = jax.random.normal(jax.random.PRNGKey(0), (T, 2))
  b = jax.random.normal(jax.random.PRNGKey(1), (T, 1, 2))
  return {"a": a, "b": b}


@pytest.mark.parametrize("norm", sharing.NORMS)
def test_penalty_matches_hand_computation(norm):
  tree, lam = _tree(), 0.7
  vec = [
    np.concatenate([np.asarray(tree["a"][t]).ravel(), np.asarray(tree["b"][t]).ravel()])
    for t in range(T)
  ]
  if norm == "mean":
    bar = np.mean(vec, 0)
    want = lam * sum(np.linalg.norm(v - bar) for v in vec)
  else:
    p = 2 if norm == "squared" else 1
    want = lam * sum(
      np.linalg.norm(vec[i] - vec[j]) ** p for i, j in itertools.combinations(range(T), 2)
    )
  got = sharing.soft_sharing_penalty(tree, lam, norm)
  np.testing.assert_allclose(got, want, rtol=1e-5)
  d = sharing.pairwise_distances(tree)
  np.testing.assert_allclose(d[0, 2], np.linalg.norm(vec[0] - vec[2]), rtol=1e-5)
  np.testing.assert_allclose(np.diag(d), 0.0, atol=1e-6)


@pytest.mark.parametrize("norm", sharing.NORMS)
def test_penalty_gradient_is_finite_when_tasks_coincide(norm):
  tied = jax.tree.map(lambda p: jnp.broadcast_to(p[:1], p.shape), _tree())
  g = jax.grad(sharing.soft_sharing_penalty)(tied, 1.0, norm)
  chex.assert_tree_all_finite(g)
  assert float(sharing.soft_sharing_penalty(tied, 1.0, norm)) == pytest.approx(0.0, abs=1e-6)


def test_penalty_rejects_unknown_norm():
  with pytest.raises(ValueError, match="soft_norm"):
    models.get("soft_sharing", num_tasks=2, output_size=1, soft_norm="l1")


@functools.cache
def _train(name, steps, soft_lambda=None):
  kw = {} if soft_lambda is None else {"soft_lambda": soft_lambda}
  ts = get_taskset("mmoe_regression", num_tasks=T, dim=6, n_train=64, n_test=16)
  data = DeviceData.from_taskset(ts)
  model = models.get(name, num_tasks=T, output_size=1, width=8, depth=2, **kw)
  params = model.init(jax.random.PRNGKey(0), jnp.asarray(ts.x_train[0, :2]))
  init_state, step = make_train_step(
    model, data, make_optimizer("adam", 1e-2), "equal", tasks_per_batch=T, batch_size=8
  )
  state, _ = make_chunk(step, steps)(init_state(jax.random.PRNGKey(1), params))
  return model, state.params


STEPS = 100


def test_lambda_zero_trains_exactly_like_independent():
  _, p_ind = _train("independent", STEPS)
  _, p_soft = _train("soft_sharing", STEPS, soft_lambda=0.0)
  chex.assert_trees_all_equal(p_soft, p_ind)


def test_large_lambda_pulls_task_networks_together():
  dist = {}
  for lam in (0.0, 1.0):
    model, params = _train("soft_sharing", STEPS, soft_lambda=lam)
    d = sharing.pairwise_distances(model.penalised(params))
    dist[lam] = float(jnp.triu(d, 1).sum())
  assert dist[1.0] < 0.1 * dist[0.0], dist
