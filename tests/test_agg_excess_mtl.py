"""Known answers for ``excess_mtl``."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import aggregators

EPS = 1e-12  # tiny, so √(g² + eps) = |g| in float32 and the hand arithmetic is exact


def _reference(gs, step_size, eps):
  """The authors' ExcessMTL.backward (all tasks every step) in float64: weights sum to T,
  no weight step on the first call, r = e / e⁰."""
  t = gs[0].shape[0]
  sq, w, base, out = np.zeros_like(gs[0], np.float64), np.ones(t), None, []
  for g in gs:
    g = np.asarray(g, np.float64)
    sq = sq + g**2
    e = (g**2 / np.sqrt(sq + eps)).sum(1)
    if base is None:
      base = e
    else:
      w = w * np.exp(step_size * e / base)
      w = w / w.sum() * t
    out.append(w @ g)
  return out


def _run(gs, task_ids=None, max_tasks=4, **hp):
  agg = aggregators.get("excess_mtl", max_tasks=max_tasks, **hp)
  update = jax.jit(agg.update)
  state = agg.init(jnp.zeros(np.shape(gs[0])[1]))
  outs = []
  for g, ids in zip(gs, task_ids or [None] * len(gs)):
    d, state = update(jnp.asarray(g, jnp.float32), state, None, task_ids=ids)
    outs.append(d)
  return outs, state


def test_hand_computed_two_steps():
  # Step 1: S = g² = [[16, 0], [0, 9]]; e = Σ g²/√S = (16/4, 9/3) = (4, 3) = the baselines;
  # r = (1, 1): equal steps, the weights stay (1, 1) and the update is Σ g = (4, 3).
  # Step 2: S = [[16 + 9, 0], [0, 9 + 16]] = 25 each; e = (9/5, 16/5); r = e/e⁰ =
  # (9/20, 16/15); η(r₂ − r₁) = η·37/60 = ln 3 for η = (60/37) ln 3, so w ∝ (1, 3), summing
  # to 2: w = (0.5, 1.5); update = 0.5·(3, 0) + 1.5·(0, 4) = (1.5, 6).
  gs = [np.array([[4.0, 0.0], [0.0, 3.0]]), np.array([[3.0, 0.0], [0.0, 4.0]])]
  (d1, d2), state = _run(gs, step_size=60 / 37 * math.log(3), eps=EPS)
  chex.assert_trees_all_close(d1, jnp.array([4.0, 3.0]), rtol=1e-6)
  chex.assert_trees_all_close(d2, jnp.array([1.5, 6.0]), rtol=1e-5)
  np.testing.assert_allclose(state.sq_sum[:2], [[25.0, 0.0], [0.0, 25.0]], rtol=1e-6)
  np.testing.assert_allclose(state.baseline, [4.0, 3.0, 0.0, 0.0], rtol=1e-6)
  np.testing.assert_allclose(jnp.exp(state.log_w), [0.5, 1.5, 1.0, 1.0], rtol=1e-5)


def test_weights_ignore_each_tasks_gradient_scale():
  # r_i = e_i/e_i⁰ is unchanged when task i's gradients are all multiplied by c (e scales
  # by c, so does e⁰): ×100 on task 2 gives the same weights (0.5, 1.5), update (1.5, 600).
  gs = [np.array([[4.0, 0.0], [0.0, 300.0]]), np.array([[3.0, 0.0], [0.0, 400.0]])]
  (_, d2), state = _run(gs, step_size=60 / 37 * math.log(3), eps=EPS)
  chex.assert_trees_all_close(d2, jnp.array([1.5, 600.0]), rtol=1e-5)
  np.testing.assert_allclose(jnp.exp(state.log_w[:2]), [0.5, 1.5], rtol=1e-5)


@pytest.mark.parametrize("step_size", [1e-2, 1.0])
def test_matches_authors_formula(step_size):
  rng = np.random.default_rng(0)
  gs = [rng.normal(size=(3, 5)).astype(np.float32) for _ in range(5)]
  outs, _ = _run(gs, step_size=step_size)
  for d, expected in zip(outs, _reference(gs, step_size, 1e-7)):
    chex.assert_trees_all_close(d, expected.astype(np.float32), rtol=1e-5, atol=1e-6)


def test_single_task_and_identical_gradients():
  # T = 1: w = 1·softmax(one logit) = 1 at every step, so the update is g. K identical
  # rows: identical e, e⁰ and r, equal weights 1, so K·g at every step.
  g = np.array([[1.0, -2.0, 0.5]])
  outs, _ = _run([g, 2 * g, -g], step_size=1.0)
  for d, gi in zip(outs, [g, 2 * g, -g]):
    chex.assert_trees_all_close(d, jnp.asarray(gi[0]), rtol=1e-6)
  outs, state = _run([np.tile(g, (3, 1)), np.tile(3 * g, (3, 1))], step_size=1.0)
  chex.assert_trees_all_close(outs[1], jnp.asarray(9 * g[0]), rtol=1e-5)
  np.testing.assert_allclose(jnp.exp(state.log_w[:3]), [1.0, 1.0, 1.0], rtol=1e-6)


def test_zero_gradient_keeps_no_baseline():
  # Task 2's first gradient is 0: no baseline and r = 0 (its weight falls); its first
  # nonzero gradient (step 2) sets e⁰ = ‖(0, 2)‖₁ = 2, so r = 1 then. Step 1: r = (1, 0),
  # η = ln 3: w ∝ (3, 1), w = (1.5, 0.5), update 1.5·(1, 0) = (1.5, 0).
  # Step 2: task 1 S = (2, 0), e = 1/√2, r = 1/√2; task 2 S = (0, 4), e = 4/2 = 2, r = 1.
  gs = [np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 2.0]])]
  (d1, d2), state = _run(gs, step_size=math.log(3), eps=EPS)
  chex.assert_trees_all_close(d1, jnp.array([1.5, 0.0]), rtol=1e-6)
  np.testing.assert_allclose(state.baseline[:2], [1.0, 2.0], rtol=1e-6)
  z = np.log([1.5, 0.5]) + math.log(3) * np.array([1 / math.sqrt(2), 1.0])
  w = 2 * np.exp(z) / np.exp(z).sum()
  chex.assert_trees_all_close(d2, jnp.asarray([w[0], 2 * w[1]], jnp.float32), rtol=1e-5)


def test_state_is_keyed_by_task_id():
  # Call 1, ids (3, 0): row 3 gets S = (16, 0), e⁰ = 4; row 0 gets S = (0, 9), e⁰ = 3;
  # r = (1, 1), weights 1.
  # Call 2, ids (0, 2): task 0 S = (0, 9 + 16), e = 16/5, r = 16/15; task 2 is new: S =
  # (25, 0), e = e⁰ = 25/5 = 5, r = 1. η(16/15 − 1) = η/15 = ln 3 for η = 15 ln 3: w =
  # (1.5, 0.5); update = 1.5·(0, 4) + 0.5·(5, 0) = (2.5, 6). Row 3 is left as it was.
  gs = [np.array([[4.0, 0.0], [0.0, 3.0]]), np.array([[0.0, 4.0], [5.0, 0.0]])]
  ids = [jnp.array([3, 0]), jnp.array([0, 2])]
  (d1, d2), state = _run(gs, task_ids=ids, step_size=15 * math.log(3), eps=EPS)
  chex.assert_trees_all_close(d1, jnp.array([4.0, 3.0]), rtol=1e-6)
  chex.assert_trees_all_close(d2, jnp.array([2.5, 6.0]), rtol=1e-5)
  np.testing.assert_allclose(
    state.sq_sum, [[0.0, 25.0], [0.0, 0.0], [25.0, 0.0], [16.0, 0.0]], rtol=1e-6
  )
  np.testing.assert_allclose(state.baseline, [3.0, 0.0, 5.0, 4.0], rtol=1e-6)
  np.testing.assert_allclose(jnp.exp(state.log_w), [1.5, 1.0, 0.5, 1.0], rtol=1e-5)


def test_pytree_input():
  tree = {"a": jnp.array([[[4.0]], [[0.0]]]), "b": jnp.array([[0.0], [3.0]])}
  agg = aggregators.get("excess_mtl", max_tasks=2)
  params = jax.tree.map(lambda x: x[0], tree)
  d, _ = jax.jit(agg.update)(tree, agg.init(params), params)
  chex.assert_trees_all_close(d, {"a": jnp.array([[4.0]]), "b": jnp.array([3.0])}, rtol=1e-6)


def test_rejects_bad_hyperparameters():
  for hp in [{"step_size": 0.0}, {"step_size": math.inf}, {"eps": 0.0}, {"max_tasks": 0}]:
    with pytest.raises(ValueError, match="excess_mtl"):
      aggregators.get("excess_mtl", **hp)
