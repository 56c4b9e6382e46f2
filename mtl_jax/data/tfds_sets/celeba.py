"""CelebA attributes: 40 binary tasks (sigmoid) on the same face images."""

import numpy as np

from mtl_jax.data.tfds_sets import _source
from mtl_jax.tasks import TaskSet, TaskSpec, make_taskset

NAME = "celeba_attributes"
DATASET = "celeb_a"
ATTRIBUTES = (
  "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
  "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair",
  "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair",
  "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
  "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
  "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings",
  "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)  # fmt: skip


def _chosen(attributes) -> list[str]:
  if attributes is None:
    return list(ATTRIBUTES)
  names = [attributes] if isinstance(attributes, str) else list(attributes)
  bad = [a for a in names if a not in ATTRIBUTES]
  if bad or not names or len(set(names)) != len(names):
    raise ValueError(
      f"task set {NAME!r}: attributes must be distinct CelebA attribute names; unknown or "
      f"repeated in {names}; valid: {', '.join(ATTRIBUTES)}"
    )
  return names


def _split(source, n: int, names: list[str], size: int):
  """The first ``n`` images of ``source`` (centre-cropped, resized) and their 0/1 labels."""
  n = min(n, len(source))
  if n < 1:
    raise ValueError(f"task set {NAME!r}: a split of {DATASET!r} is empty")
  keys = ["image"] + [f"attributes/{a}" for a in names]
  ex = _source.read(source, range(n), keys)
  x = np.stack([_source.to_float_image(i, size) for i in ex["image"]])
  y = np.stack([np.asarray(ex[f"attributes/{a}"], np.float32) for a in names], axis=1)
  return x, y


def celeba_attributes(
  attributes: tuple | None = None,
  num_train: int = 2_000,
  num_test: int = 500,
  image_size: int = 24,
  data_dir: str | None = None,
) -> TaskSet:
  """CelebA (TFDS ``celeb_a``) as multi-label learning: one binary task per face attribute.

  Tasks: one ``sigmoid_ce`` task of output size 1 per attribute, named as in CelebA
  (``Smiling``, ``Male``, ...; :data:`ATTRIBUTES`, 40 in all), label 1 when the attribute
  is present. All tasks label the same images (``shared_inputs=True``).

  Splits: TFDS ``train`` -> D^tr (its first ``num_train`` images) and ``test`` -> D^test (its
  first ``num_test``); TFDS's order is fixed (shuffled when prepared), so the subsample is
  deterministic. Images: the 218×178 RGB face is centre-cropped to 178×178 and resized
  (bilinear) to ``[image_size, image_size, 3]`` in [0, 1].

  Memory: a task set stores one copy of the inputs per task, T × N × image_size² × 3
  float32 (40 tasks × 2,000 × 24² × 3 ≈ 0.55 GB for the defaults); choose fewer
  ``attributes`` for bigger images or more examples.

  Args:
    attributes: names of a subset of :data:`ATTRIBUTES`, in the order wanted (default: all).
    num_train, num_test: images per split (defaults 2,000 / 500).
    image_size: input side (default 24).
    data_dir: where the prepared ``celeb_a`` lies (default ``$TFDS_DATA_DIR`` or
      ``~/tensorflow_datasets``); never downloaded (see docs/data.md).
  """
  for field, value in (
    ("num_train", num_train),
    ("num_test", num_test),
    ("image_size", image_size),
  ):
    _source.check_size(NAME, field, value)
  names = _chosen(attributes)
  train_src, test_src = _source.load_splits(NAME, DATASET, ("train", "test"), data_dir)
  x_tr, y_tr = _split(train_src, num_train, names, image_size)
  x_te, y_te = _split(test_src, num_test, names, image_size)
  specs = [TaskSpec(a, "sigmoid_ce", 1) for a in names]
  train = [(x_tr, y_tr[:, [i]]) for i in range(len(names))]
  test = [(x_te, y_te[:, [i]]) for i in range(len(names))]
  return make_taskset(NAME, specs, train, test, shared_inputs=True)
