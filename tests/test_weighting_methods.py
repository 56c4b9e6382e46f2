"""Known answers for each loss weighting: hand calculations and limits from the papers."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import weighting


def run(w, losses_TxK, task_ids=None, **extras):
  """Feeds a sequence of loss vectors through one jitted update; returns (weights, state)."""
  losses_TxK = jnp.asarray(losses_TxK, jnp.float32)

  def body(state, losses):
    weights, state = w.update(losses, state, task_ids, **extras)
    return state, weights

  num_tasks = extras.pop("num_tasks", losses_TxK.shape[1])
  state, weights = jax.jit(lambda l: jax.lax.scan(body, w.init(num_tasks), l))(losses_TxK)
  return np.asarray(weights), state


def test_contract_names_are_registered():
  expected = {"equal", "static", "uncertainty", "gradnorm", "dwa", "rlw", "group_dro", "stch"}
  assert expected <= set(weighting.names())


# --- static -------------------------------------------------------------------------------


def test_static_gathers_weights_of_sampled_tasks():
  w = weighting.get("static", weights=[1.0, 2.0, 0.0])
  state = w.init(3)
  np.testing.assert_array_equal(w.update(jnp.ones(3), state)[0], [1.0, 2.0, 0.0])
  np.testing.assert_array_equal(w.update(jnp.ones(2), state, jnp.array([2, 1]))[0], [0.0, 2.0])


@pytest.mark.parametrize(
  ("weights", "message"),
  [
    (None, "weights is required"),
    ([1.0, -0.5], r"must be >= 0, got -0.5 at index 1"),
    ([1.0, float("nan")], r"weights\[1\] must be finite"),
    ([0.0, 0.0], "all weights are zero"),
    ([], "at least one value"),
    (3.0, "sequence of numbers"),
    (["a"], r"weights\[0\] must be a number"),
  ],
)
def test_static_rejects_bad_weights_at_factory_time(weights, message):
  with pytest.raises(ValueError, match=message):
    weighting.get("static", weights=weights)


def test_static_checks_length_at_init():
  w = weighting.get("static", weights=[1.0, 2.0])
  expected = r"static weights: expected 3 values \(one per task\), got 2"
  with pytest.raises(ValueError, match=expected):
    w.init(3)
  with pytest.raises(ValueError, match="num_tasks must be a positive int"):
    w.init(0)


# --- uncertainty --------------------------------------------------------------------------


@pytest.mark.parametrize(("optimizer", "learning_rate"), [("adam", 1e-2), ("sgd", 5e-2)])
def test_uncertainty_log_variance_converges_to_log_loss(optimizer, learning_rate):
  w = weighting.get("uncertainty", optimizer=optimizer, learning_rate=learning_rate)
  constant = np.array([0.25, 4.0], np.float32)
  weights, state = run(w, np.tile(constant, (3000, 1)))
  np.testing.assert_allclose(weights[0], [1.0, 1.0])  # s starts at 0
  np.testing.assert_allclose(state.log_vars, np.log(constant), atol=2e-2)
  np.testing.assert_allclose(weights[-1], 1.0 / constant, rtol=3e-2)


def test_uncertainty_moves_only_sampled_tasks():
  w = weighting.get("uncertainty")
  _, state = run(w, np.full((5, 1), 3.0), task_ids=jnp.array([1]), num_tasks=3)
  assert state.log_vars[1] > 0
  np.testing.assert_array_equal(state.log_vars[jnp.array([0, 2])], [0.0, 0.0])


@pytest.mark.parametrize(
  ("hyperparams", "field"),
  [
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"optimizer": "rmsprop"}, "optimizer"),
    ({"log_var_bound": -1.0}, "log_var_bound"),
  ],
)
def test_uncertainty_rejects_bad_hyperparameters(hyperparams, field):
  with pytest.raises(ValueError, match=f"uncertainty: {field}"):
    weighting.get("uncertainty", **hyperparams)


# --- gradnorm -----------------------------------------------------------------------------


def gradnorm_step_by_hand(w, losses, initial, norms, alpha, lr):
  g = [wi * ni for wi, ni in zip(w, norms, strict=True)]
  g_bar = sum(g) / len(g)
  ratio = [l / l0 for l, l0 in zip(losses, initial, strict=True)]
  r = [x / (sum(ratio) / len(ratio)) for x in ratio]
  new = [
    wi - lr * math.copysign(1.0, gi - g_bar * ri**alpha) * ni
    for wi, gi, ri, ni in zip(w, g, r, norms, strict=True)
  ]
  return [x * len(new) / sum(new) for x in new]


def test_gradnorm_two_steps_by_hand():
  w = weighting.get("gradnorm", alpha=1.5, learning_rate=0.025)
  state = w.init(2)
  losses = [[2.0, 1.0], [1.0, 0.8]]
  norms = [[3.0, 1.0], [2.0, 1.0]]

  expected_w = [1.0, 1.0]
  for l, n in zip(losses, norms, strict=True):
    weights, state = w.update(jnp.array(l), state, grad_norms=jnp.array(n))
    np.testing.assert_allclose(weights, expected_w, rtol=1e-6)  # pre-step weights
    expected_w = gradnorm_step_by_hand(expected_w, l, losses[0], n, 1.5, 0.025)
    np.testing.assert_allclose(state.weights, expected_w, rtol=1e-6)
  # First step: r = 1, targets are Ḡ = 2, so w = (1 − 0.075, 1 + 0.025) · 2 / 1.95.
  np.testing.assert_allclose(
    gradnorm_step_by_hand([1.0, 1.0], losses[0], losses[0], norms[0], 1.5, 0.025),
    [0.925 * 2 / 1.95, 1.025 * 2 / 1.95],
  )


def test_gradnorm_weights_sum_to_num_tasks_with_sampled_subsets():
  w = weighting.get("gradnorm", learning_rate=0.3)
  state = w.init(4)
  for i, ids in enumerate([[0, 2], [3, 2], [1, 0]]):
    _, state = w.update(
      jnp.array([1.0, 2.0 + i]), state, jnp.array(ids), grad_norms=jnp.array([0.5, 4.0])
    )
    np.testing.assert_allclose(jnp.sum(state.weights), 4.0, rtol=1e-6)
  assert bool(jnp.all(state.weights > 0))
  np.testing.assert_array_equal(state.seen, [True, True, True, True])
  np.testing.assert_allclose(state.initial_losses, [1.0, 1.0, 2.0, 1.0])  # first sightings


def test_gradnorm_needs_grad_norms_and_valid_hyperparameters():
  w = weighting.get("gradnorm")
  with pytest.raises(ValueError, match="grad_norms"):
    w.update(jnp.ones(2), w.init(2))
  with pytest.raises(ValueError, match="gradnorm: alpha"):
    weighting.get("gradnorm", alpha=-1.0)
  with pytest.raises(ValueError, match="gradnorm: learning_rate"):
    weighting.get("gradnorm", learning_rate=float("inf"))


# --- dwa ----------------------------------------------------------------------------------


def test_dwa_three_tasks_by_hand():
  w = weighting.get("dwa", temperature=2.0)
  losses = [[1.0, 2.0, 3.0], [0.5, 2.0, 4.5], [0.4, 1.0, 9.0], [1.0, 1.0, 1.0]]
  weights, _ = run(w, losses)
  np.testing.assert_allclose(weights[:2], np.ones((2, 3)))  # fewer than two past losses

  def by_hand(prev, before):
    e = [math.exp(p / b / 2.0) for p, b in zip(prev, before, strict=True)]
    return [3 * x / sum(e) for x in e]

  np.testing.assert_allclose(weights[2], by_hand(losses[1], losses[0]), rtol=1e-6)
  np.testing.assert_allclose(weights[3], by_hand(losses[2], losses[1]), rtol=1e-6)
  # r = (0.5, 1, 1.5): the task whose loss fell least gets the most weight.
  np.testing.assert_allclose(weights[2], [0.762826, 0.979488, 1.257687], rtol=1e-5)


def test_dwa_ema_smooths_recorded_losses():
  w = weighting.get("dwa", temperature=1.0, ema=0.5)
  weights, state = run(w, [[1.0, 1.0], [3.0, 1.0], [5.0, 1.0]])
  # Recorded: m(1) = 1, m(2) = 0.5·1 + 0.5·3 = 2 → r = (2, 1) at step 3.
  e = [math.exp(2.0), math.exp(1.0)]
  np.testing.assert_allclose(weights[2], [2 * e[0] / sum(e), 2 * e[1] / sum(e)], rtol=1e-6)
  np.testing.assert_allclose(state.last, [3.5, 1.0])


def test_dwa_sampled_subset_sums_to_k():
  w = weighting.get("dwa")
  weights, _ = run(w, [[1.0, 2.0], [2.0, 1.0], [4.0, 0.5]], task_ids=jnp.array([3, 0]), num_tasks=5)
  np.testing.assert_allclose(weights.sum(axis=1), [2.0, 2.0, 2.0], rtol=1e-6)
  assert weights[2, 0] > weights[2, 1]  # task 3's loss doubled, task 0's halved


@pytest.mark.parametrize(
  ("hyperparams", "field"),
  [({"temperature": 0.0}, "temperature"), ({"ema": 1.0}, "ema"), ({"ema": -0.1}, "ema")],
)
def test_dwa_rejects_bad_hyperparameters(hyperparams, field):
  with pytest.raises(ValueError, match=f"dwa: {field}"):
    weighting.get("dwa", **hyperparams)


# --- rlw ----------------------------------------------------------------------------------


@pytest.mark.parametrize("distribution", ["normal", "uniform", "dirichlet"])
def test_rlw_weights_sum_to_k_and_follow_the_key(distribution):
  w = weighting.get("rlw", distribution=distribution)
  state = w.init(5)
  losses = jnp.ones(4)
  a, state_a = w.update(losses, state, rng=jax.random.PRNGKey(1))
  b, _ = w.update(losses, state, rng=jax.random.PRNGKey(2))
  a2, _ = w.update(2 * losses, state, rng=jax.random.PRNGKey(1))
  np.testing.assert_allclose(a.sum(), 4.0, rtol=1e-5)
  np.testing.assert_allclose(b.sum(), 4.0, rtol=1e-5)
  assert not np.allclose(a, b)
  np.testing.assert_array_equal(a, a2)
  np.testing.assert_array_equal(state_a.key, state.key)  # the given key is used, state kept


def test_rlw_without_rng_uses_and_advances_its_own_key():
  w = weighting.get("rlw", seed=3)
  weights, state = run(w, np.ones((3, 2)))
  again, _ = run(w, np.ones((3, 2)))
  np.testing.assert_array_equal(weights, again)  # reproducible from the seed
  assert not np.allclose(weights[0], weights[1])
  assert not np.array_equal(state.key, w.init(2).key)


def test_rlw_rejects_bad_hyperparameters():
  with pytest.raises(ValueError, match="rlw: distribution"):
    weighting.get("rlw", distribution="cauchy")
  with pytest.raises(ValueError, match="rlw: concentration"):
    weighting.get("rlw", distribution="dirichlet", concentration=0.0)


# --- group_dro ----------------------------------------------------------------------------


def test_group_dro_one_exponentiated_gradient_step_by_hand():
  w = weighting.get("group_dro", step_size=0.1)
  state = w.init(3)
  weights, state = w.update(jnp.array([1.0, 2.0, 3.0]), state)
  e = [math.exp(0.1 * l) / 3 for l in (1.0, 2.0, 3.0)]
  np.testing.assert_allclose(weights, [3 * x / sum(e) for x in e], rtol=1e-6)

  # Only task 0 sampled: q_0 ← q_0 e^{0.1·2}, then normalised over all three tasks.
  q = [x / sum(e) for x in e]
  weights, state = w.update(jnp.array([2.0]), state, jnp.array([0]))
  q[0] *= math.exp(0.2)
  np.testing.assert_allclose(weights, [3 * q[0] / sum(q)], rtol=1e-6)
  np.testing.assert_allclose(jnp.exp(state.log_q), [x / sum(q) for x in q], rtol=1e-6)


def test_group_dro_concentrates_on_the_worst_task():
  losses = jnp.array([1.0, 3.0, 2.0])
  big, _ = weighting.get("group_dro", step_size=100.0).update(
    losses, weighting.get("group_dro").init(3)
  )
  np.testing.assert_allclose(big, [0.0, 3.0, 0.0], atol=1e-6)
  weights, _ = run(weighting.get("group_dro", step_size=0.05), np.tile(losses, (200, 1)))
  assert np.all(np.diff(weights[:, 1]) > 0)  # the worst task's weight keeps growing
  assert weights[-1, 1] > 2.9
  with pytest.raises(ValueError, match="group_dro: step_size"):
    weighting.get("group_dro", step_size=-1.0)


# --- stch ---------------------------------------------------------------------------------


def test_stch_weights_by_hand_and_limits():
  w = weighting.get("stch", mu=1.0)
  weights, _ = w.update(jnp.array([1.0, 2.0]), w.init(2))
  e = [math.exp(1.0), math.exp(2.0)]
  np.testing.assert_allclose(weights, [2 * e[0] / sum(e), 2 * e[1] / sum(e)], rtol=1e-6)

  w = weighting.get("stch", mu=1e-3)
  np.testing.assert_allclose(
    w.update(jnp.array([1.0, 3.0, 2.0]), w.init(3))[0], [0, 3, 0], atol=1e-6
  )
  np.testing.assert_allclose(w.update(jnp.full(4, 2.5), w.init(4))[0], np.ones(4), rtol=1e-6)
  w = weighting.get("stch", mu=1e4)
  np.testing.assert_allclose(w.update(jnp.array([1.0, 3.0]), w.init(2))[0], [1, 1], rtol=1e-3)


def test_stch_ideal_point_per_task():
  w = weighting.get("stch", mu=1e-3, ideal=[0.0, 2.5, 0.0])
  # L − z = (1, 0.5): the first task is now the farthest from its ideal value.
  weights, _ = w.update(jnp.array([1.0, 3.0]), w.init(3), jnp.array([0, 1]))
  np.testing.assert_allclose(weights, [2.0, 0.0], atol=1e-6)
  with pytest.raises(ValueError, match=r"stch ideal: expected 2 values \(one per task\), got 3"):
    w.init(2)
  with pytest.raises(ValueError, match="stch: mu"):
    weighting.get("stch", mu=0.0)


def test_stch_log_form_warmup_then_nadir_known_answer():
  w = weighting.get("stch", form="log", warmup_steps=2)
  step = jax.jit(w.update)
  state = w.init(3)
  ids = jnp.array([0, 1])
  # Warm-up: Σ log L, weights 1/L; the nadir point averages the warm-up losses.
  weights, state = step(jnp.array([1.0, 2.0]), state, ids)
  np.testing.assert_allclose(weights, [1.0, 0.5], rtol=1e-6)
  weights, state = step(jnp.array([3.0, 4.0]), state, ids)
  np.testing.assert_allclose(weights, [1.0 / 3.0, 0.25], rtol=1e-6)
  # n = (2, 3); L = (1, 6): L/n = (0.5, 2), softmax(log(L/n)) = (0.2, 0.8) at μ = 1,
  # w = K·softmax/L = 2·(0.2/1, 0.8/6).
  weights, state = step(jnp.array([1.0, 6.0]), state, ids)
  np.testing.assert_allclose(weights, [0.4, 0.8 / 3.0], rtol=1e-5)
  np.testing.assert_allclose(state.loss_sum, [4.0, 6.0, 0.0], rtol=1e-6)
  # Task 2 was never sampled during warm-up: its nadir is 1. μ = 1/2 squares the ratios:
  # (L/n)² = (1, 4) for L = (2, 2) on tasks (0, 2): softmax = (0.2, 0.8), w = 2·(0.1, 0.4).
  w = weighting.get("stch", form="log", warmup_steps=2, mu=0.5)
  state = w.init(3)
  for losses in ([1.0, 2.0], [3.0, 4.0]):
    _, state = w.update(jnp.array(losses), state, ids)
  weights, _ = w.update(jnp.array([2.0, 2.0]), state, jnp.array([0, 2]))
  np.testing.assert_allclose(weights, [0.2 * 2.0 / 2.0, 0.8 * 2.0 / 2.0], rtol=1e-5)


def test_stch_form_checks():
  with pytest.raises(ValueError, match=r"stch: form must be one of \['linear', 'log'\]"):
    weighting.get("stch", form="exp")
  with pytest.raises(ValueError, match="only used by form='log'"):
    weighting.get("stch", warmup_steps=3)
  with pytest.raises(ValueError, match="only used by form='linear'"):
    weighting.get("stch", form="log", ideal=1.0)
  with pytest.raises(ValueError, match="warmup_steps must be an int >= 0"):
    weighting.get("stch", form="log", warmup_steps=-1)


# --- scale_invariant ----------------------------------------------------------------------


def test_scale_invariant_update_ignores_loss_scale():
  w = weighting.get("scale_invariant", eps=1e-3)
  state = w.init(3)
  weights, _ = w.update(jnp.array([0.5, 4.0, 0.0]), state)
  np.testing.assert_allclose(weights, [2.0, 0.25, 1e3], rtol=1e-6)  # 1/L, floored at eps
  # Multiplying a loss by c divides its weight by c: w·L (and w·∇L) is unchanged.
  scaled, _ = w.update(jnp.array([5.0, 4.0, 1.0]), state)
  np.testing.assert_allclose(scaled[0] * 5.0, weights[0] * 0.5, rtol=1e-6)
  with pytest.raises(ValueError, match="scale_invariant: eps"):
    weighting.get("scale_invariant", eps=0.0)
