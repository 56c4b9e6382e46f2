"""TaskSet packing, offline task sets, label standardisation and the task sampler."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import data
from mtl_jax.data.sampling import DeviceData, sample_batch
from mtl_jax.data.synthetic import correlated_unit_vectors
from mtl_jax.tasks import TaskSpec, make_taskset


def _regression_set(sizes, scales, standardize=True, seed=0):
  rng = np.random.default_rng(seed)
  specs = [TaskSpec(f"t{i}", "mse", 2) for i in range(len(sizes))]
  train = [
    (rng.normal(size=(n, 3)), s * rng.normal(size=(n, 2)) + 5 * s) for n, s in zip(sizes, scales)
  ]
  test = [(rng.normal(size=(7, 3)), s * rng.normal(size=(7, 2))) for s in scales]
  return make_taskset("toy", specs, train, test, standardize_labels=standardize), train, test


def test_label_standardisation_round_trips_and_uses_train_only():
  ts, train, test = _regression_set([50, 20], [0.1, 1000.0])
  for i, (_, y) in enumerate(train):
    n = len(y)
    np.testing.assert_allclose(ts.y_train[i, :n].mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(ts.y_train[i, :n].std(0), 1, atol=1e-4)
    np.testing.assert_allclose(ts.label_mean[i], y.mean(0), rtol=1e-5)
    np.testing.assert_allclose(ts.unstandardize(ts.y_train[i, :n], i), y, rtol=1e-4, atol=1e-3)
    # Test labels use the *train* statistics (no peeking at D^test).
    np.testing.assert_allclose(
      ts.unstandardize(ts.y_test[i, :7], i), test[i][1], rtol=1e-4, atol=1e-2
    )
  raw, _, _ = _regression_set([50, 20], [0.1, 1000.0], standardize=False)
  np.testing.assert_allclose(raw.y_train[1, :20], train[1][1], rtol=1e-6)


def test_padding_and_sizes():
  ts, _, _ = _regression_set([50, 20], [1.0, 1.0])
  assert ts.x_train.shape == (2, 50, 3) and list(ts.n_train) == [50, 20]
  np.testing.assert_array_equal(ts.x_train[1, 20:], 0)


def test_heterogeneous_tasks_pack_into_one_stack():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(10, 4))
  specs = [
    TaskSpec("cls3", "softmax_ce", 3),
    TaskSpec("cls7", "softmax_ce", 7),
    TaskSpec("ml", "sigmoid_ce", 2),
    TaskSpec("reg", "mse", 1),
  ]
  ys = [
    rng.integers(0, 3, 10),
    rng.integers(0, 7, 10),
    rng.integers(0, 2, (10, 2)),
    rng.normal(size=10),
  ]
  ts = make_taskset("mixed", specs, [(x, y) for y in ys], [(x, y) for y in ys])
  assert ts.output_size == 7 and ts.label_width == 2
  np.testing.assert_array_equal(ts.output_mask().sum(1), [3, 7, 2, 1])
  np.testing.assert_array_equal(ts.y_train[1, :10, 0], ys[1])


# Generated and bundled task sets; the TFDS ones need prepared data (tests/test_tfds_tasksets.py
# builds them under tfds.testing.mock_data).
@pytest.mark.parametrize("name", [n for n in data.names() if not data.uses_data_dir(n)])
def test_offline_tasksets_build(name):
  ts = data.get_taskset(name)
  assert ts.num_tasks >= 2
  assert np.all(np.isfinite(ts.x_train)) and np.all(np.isfinite(ts.y_train))
  assert ts.x_train.shape[:2] == ts.y_train.shape[:2]
  assert np.all(ts.n_train > 0) and np.all(ts.n_test > 0)


def test_rotated_digits_tasks_differ_in_inputs():
  ts = data.get_taskset("rotated_digits", angles=(0, 180))
  img0 = ts.x_train[0, :5].reshape(5, 8, 8)
  # Each task's pool is rotated by its own angle: 180° task ≠ flipped 0° images in general,
  # but rotating the 180° task's images back gives upright statistics (mean ink column).
  img1 = ts.x_train[1, :300].reshape(-1, 8, 8)
  np.testing.assert_allclose(
    img1[:, ::-1, ::-1].mean(0), ts.x_train[0, :300].reshape(-1, 8, 8).mean(0), atol=0.08
  )
  assert img0.shape == (5, 8, 8)


def test_digit_attributes_share_inputs():
  ts = data.get_taskset("digit_attributes", include_regression=True)
  assert ts.shared_inputs
  np.testing.assert_array_equal(ts.x_train[0], ts.x_train[3])
  assert [s.loss for s in ts.specs] == [
    "softmax_ce",
    "sigmoid_ce",
    "sigmoid_ce",
    "sigmoid_ce",
    "mse",
  ]


def test_mmoe_weight_correlation():
  w = correlated_unit_vectors(5, 64, 0.6, np.random.default_rng(1))
  cos = w @ w.T
  np.testing.assert_allclose(cos[~np.eye(5, dtype=bool)], 0.6, atol=1e-6)
  np.testing.assert_allclose(np.diag(cos), 1.0, atol=1e-6)
  w2 = correlated_unit_vectors(2, 64, -0.5, np.random.default_rng(1))
  np.testing.assert_allclose(w2[0] @ w2[1], -0.5, atol=1e-6)


def test_task_sampling_is_uniform_despite_100x_size_differences():
  sizes = [1000, 10, 100, 10]
  rng = np.random.default_rng(0)
  specs = [TaskSpec(f"t{i}", "mse", 1) for i in range(4)]
  train = [(rng.normal(size=(n, 2)), rng.normal(size=(n, 1))) for n in sizes]
  ts = make_taskset("sizes", specs, train, train)
  d = DeviceData.from_taskset(ts)
  draw = jax.jit(jax.vmap(lambda k: sample_batch(k, d, 2, 4).task))
  tasks = np.asarray(draw(jax.random.split(jax.random.PRNGKey(0), 20000))).ravel()
  freq = np.bincount(tasks, minlength=4) / len(tasks)
  np.testing.assert_allclose(freq, 0.25, atol=0.01)


def test_sampled_examples_never_hit_padding():
  ts, _, _ = _regression_set([50, 3], [1.0, 1.0])
  d = DeviceData.from_taskset(ts)
  batch = jax.jit(lambda k: sample_batch(k, d, 2, 512))(jax.random.PRNGKey(1))
  chex.assert_shape(batch.x, (2, 512, 3))
  # Padding rows are all-zero inputs; real inputs are Gaussian (never exactly zero).
  assert np.all(np.abs(np.asarray(batch.x)).sum(-1) > 0)
  small = np.asarray(batch.x[list(np.asarray(batch.task)).index(1)])
  assert len(np.unique(small, axis=0)) == 3


def test_shared_inputs_batch_uses_the_same_examples():
  ts = data.get_taskset("digit_attributes")
  d = DeviceData.from_taskset(ts)
  b = sample_batch(jax.random.PRNGKey(0), d, 4, 8, shared_inputs=True)
  for k in range(1, 4):
    chex.assert_trees_all_equal(b.x[0], b.x[k])
  assert jnp.all(b.task == jnp.arange(4))


@pytest.mark.parametrize(
  "bad, match",
  [
    (dict(y0=np.array([0, 1, 5])), "labels out of range"),
    (dict(x0=np.zeros((0, 2)), y0=np.zeros((0,))), "empty train dataset"),
    (dict(x0=np.zeros((4, 2))), "x has 4 examples but y has 3"),
    (dict(x0=np.array([[0.0, np.nan]] * 3)), "inputs contain NaN"),
  ],
)
def test_bad_task_data_is_named(bad, match):
  x0, y0 = bad.get("x0", np.zeros((3, 2))), bad.get("y0", np.array([0, 1, 2]))
  specs = [TaskSpec("digits", "softmax_ce", 3), TaskSpec("other", "softmax_ce", 3)]
  ok = (np.zeros((3, 2)), np.array([0, 1, 2]))
  with pytest.raises(ValueError, match=match) as e:
    make_taskset("bad", specs, [(x0, y0), ok], [ok, ok])
  assert "'digits'" in str(e.value)


def test_unknown_taskset_lists_valid_names():
  with pytest.raises(ValueError, match="rotated_digits"):
    data.get_taskset("nope")
