"""Task sets built from scikit-learn's bundled digits (1,797 8×8 images, no download)."""

import numpy as np
from scipy import ndimage
from sklearn import datasets

from mtl_jax.tasks import TaskSet, TaskSpec, make_taskset


def _load(image_shape: bool):
  d = datasets.load_digits()
  x = (d.images / 16.0).astype(np.float32)  # [N, 8, 8] in [0, 1]
  return (x[..., None] if image_shape else x.reshape(len(x), -1)), d.target.astype(np.int32)


def rotated_digits(
  angles=(0, 90, 180, 270),
  test_fraction: float = 0.25,
  images: bool = False,
  examples_per_task: int | None = None,
  seed: int = 0,
) -> TaskSet:
  """Multi-task classification: task i classifies digits rotated by ``angles[i]`` degrees.

  Tasks differ in p_i(x) and share p(y|x) up to the rotation. The 1,797 images are split
  into disjoint per-task pools (each image belongs to one task), then each pool into
  train/test. ``images=True`` keeps ``[8, 8, 1]`` inputs (conv trunk); otherwise inputs are
  flat 64-vectors.
  """
  x, y = _load(image_shape=True)
  rng = np.random.default_rng(seed)
  order = rng.permutation(len(x))
  pools = np.array_split(order, len(angles))
  specs, train, test = [], [], []
  for angle, pool in zip(angles, pools):
    if examples_per_task is not None:
      pool = pool[:examples_per_task]
    xi = ndimage.rotate(x[pool], angle, axes=(1, 2), reshape=False, order=1, mode="constant")
    xi = np.clip(xi, 0, 1).astype(np.float32)
    if not images:
      xi = xi.reshape(len(xi), -1)
    n_test = max(1, int(round(test_fraction * len(pool))))
    specs.append(TaskSpec(f"rot{int(angle)}", "softmax_ce", 10))
    train.append((xi[n_test:], y[pool][n_test:]))
    test.append((xi[:n_test], y[pool][:n_test]))
  return make_taskset("rotated_digits", specs, train, test)


_PRIMES = np.array([0, 0, 1, 1, 0, 1, 0, 1, 0, 0])


def digit_attributes(
  test_fraction: float = 0.25,
  images: bool = False,
  include_regression: bool = False,
  missing_rate: float = 0.0,
  seed: int = 0,
) -> TaskSet:
  """Multi-label learning on one p(x): several attributes of the same digit images.

  Tasks: ``identity`` (10-way softmax), ``parity`` (odd? sigmoid), ``ge5`` (digit ≥ 5?
  sigmoid), ``prime`` (sigmoid) and, with ``include_regression``, ``ink`` (mean pixel
  intensity, regression: mixed discrete/continuous labels). All tasks share the same
  inputs and split (``shared_inputs=True``).

  ``missing_rate`` in [0, 1): each (example, task) label is dropped independently with
  this probability, in both splits (as when a data set's annotations were collected
  separately, CelebA-style); every task keeps at least one labelled example per split.
  """
  if not 0.0 <= missing_rate < 1.0:
    raise ValueError(f"digit_attributes: missing_rate must be in [0, 1), got {missing_rate}")
  x, y = _load(image_shape=images)
  rng = np.random.default_rng(seed)
  order = rng.permutation(len(x))
  n_test = int(round(test_fraction * len(x)))
  te, tr = order[:n_test], order[n_test:]
  labels = {
    "identity": (TaskSpec("identity", "softmax_ce", 10), y),
    "parity": (TaskSpec("parity", "sigmoid_ce", 1), (y % 2)[:, None].astype(np.float32)),
    "ge5": (TaskSpec("ge5", "sigmoid_ce", 1), (y >= 5)[:, None].astype(np.float32)),
    "prime": (TaskSpec("prime", "sigmoid_ce", 1), _PRIMES[y][:, None].astype(np.float32)),
  }
  if include_regression:
    ink = x.reshape(len(x), -1).mean(1, keepdims=True)
    labels["ink"] = (TaskSpec("ink", "mse", 1), ink)
  specs = [s for s, _ in labels.values()]
  train = [(x[tr], lab[tr]) for _, lab in labels.values()]
  test = [(x[te], lab[te]) for _, lab in labels.values()]
  if missing_rate > 0:
    train = [(xi, yi, _keep_labels(rng, len(yi), missing_rate)) for xi, yi in train]
    test = [(xi, yi, _keep_labels(rng, len(yi), missing_rate)) for xi, yi in test]
  return make_taskset("digit_attributes", specs, train, test, shared_inputs=True)


def _keep_labels(rng: np.random.Generator, n: int, missing_rate: float) -> np.ndarray:
  """``[n]`` mask: each label kept with probability 1 − ``missing_rate`` (at least one)."""
  keep = rng.random(n) >= missing_rate
  keep[rng.integers(n)] = True
  return keep
