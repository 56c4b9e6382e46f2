"""MultiMNIST: two MNIST digits overlaid in one image; task ``left`` and task ``right``."""

import numpy as np

from mtl_jax.data.tfds_sets import _source
from mtl_jax.tasks import TaskSet, TaskSpec, make_taskset

NAME = "multi_mnist"
DATASET = "mnist"
CANVAS = 36  # a 28x28 digit at the top-left corner, the other at the bottom-right
SHIFT = CANVAS - 28


def _overlay(images: np.ndarray, left: np.ndarray, right: np.ndarray, size: int) -> np.ndarray:
  """``[n, size, size, 1]`` float images: digit ``left[j]`` top-left, ``right[j]`` bottom-right."""
  out = []
  for a, b in zip(left, right):
    canvas = np.zeros((CANVAS, CANVAS, 1), np.uint8)
    canvas[:28, :28] = images[a]
    canvas[SHIFT:, SHIFT:] = np.maximum(canvas[SHIFT:, SHIFT:], images[b])
    out.append(_source.to_float_image(canvas, size))
  return np.stack(out)


def _split(source, n: int, rng: np.random.Generator, size: int, split: str):
  """Pairs the first 2n examples of ``source`` by a seeded permutation (no digit used twice)."""
  n = min(n, len(source) // 2)
  if n < 1:
    raise ValueError(
      f"task set {NAME!r}: the {split} split of {DATASET!r} has {len(source)} examples; "
      "need at least 2 to make one pair"
    )
  ex = _source.read(source, range(2 * n), ("image", "label"))
  images = np.stack([np.asarray(i, np.uint8).reshape(28, 28, 1) for i in ex["image"]])
  labels = np.asarray(ex["label"], np.int32)
  perm = rng.permutation(2 * n)
  left, right = perm[:n], perm[n:]
  return _overlay(images, left, right, size), labels[left], labels[right]


def multi_mnist(
  num_train: int = 10_000,
  num_test: int = 2_000,
  image_size: int = 28,
  seed: int = 0,
  data_dir: str | None = None,
) -> TaskSet:
  """MultiMNIST (Sener & Koltun, 2018) built deterministically from TFDS ``mnist``.

  Each image holds two digits on a 36×36 canvas, one in the top-left 28×28 corner and one
  in the bottom-right (shifted by 8 px, overlapping in the middle; pixel-wise max), resized
  to ``image_size`` (bilinear) and scaled to [0, 1]: inputs ``[image_size, image_size, 1]``.
  Tasks ``left`` and ``right`` classify the top-left and bottom-right digit (10-way
  softmax, label = the digit); both label the same images (``shared_inputs=True``).

  Splits: train pairs come from the first ``2·num_train`` examples of mnist's ``train``
  split, test pairs from the first ``2·num_test`` of its ``test`` split (capped at half a
  split). Within a split a permutation seeded by ``seed`` pairs the examples, so each digit
  image is used once and the same arguments always give the same task set.

  Args:
    num_train, num_test: images per split (defaults 10,000 / 2,000).
    image_size: side of the square input (28 by default; 36 keeps the canvas as is).
    seed: seed of the pairing.
    data_dir: where the prepared ``mnist`` lies (default ``$TFDS_DATA_DIR`` or
      ``~/tensorflow_datasets``); never downloaded (see docs/data.md).
  """
  for field, value in (
    ("num_train", num_train),
    ("num_test", num_test),
    ("image_size", image_size),
  ):
    _source.check_size(NAME, field, value)
  train_src, test_src = _source.load_splits(NAME, DATASET, ("train", "test"), data_dir)
  rng = np.random.default_rng(seed)
  x_tr, l_tr, r_tr = _split(train_src, num_train, rng, image_size, "train")
  x_te, l_te, r_te = _split(test_src, num_test, rng, image_size, "test")
  specs = [TaskSpec("left", "softmax_ce", 10), TaskSpec("right", "softmax_ce", 10)]
  train = [(x_tr, l_tr), (x_tr, r_tr)]
  test = [(x_te, l_te), (x_te, r_te)]
  return make_taskset(NAME, specs, train, test, shared_inputs=True)
