"""CIFAR-100 superclasses as tasks: 20 tasks, each a 5-way choice among its fine classes."""

import numpy as np

from mtl_jax.data.tfds_sets import _source
from mtl_jax.tasks import TaskSet, TaskSpec, make_taskset

NAME = "cifar100_superclasses"
DATASET = "cifar100"

# CIFAR-100's 20 superclasses ("coarse labels", in TFDS's index order) and each fine
# label's superclass (fine labels in TFDS's index order: apple, aquarium_fish, baby, ...).
SUPERCLASSES = (
  "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
  "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
  "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
  "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates", "people",
  "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2",
)  # fmt: skip
FINE_TO_COARSE = np.array([
  4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
  6, 11, 5, 10, 7, 6, 13, 15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
  5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
  10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
  16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
])  # fmt: skip
# Within a superclass, fine label f is class rank(f) among the superclass's 5 fine labels.
CLASS_IN_TASK = np.array(
  [int(np.sum(FINE_TO_COARSE[:f] == c)) for f, c in enumerate(FINE_TO_COARSE)]
)


def _chosen(superclasses) -> list[int]:
  if superclasses is None:
    return list(range(len(SUPERCLASSES)))
  names = [superclasses] if isinstance(superclasses, str) else list(superclasses)
  bad = [s for s in names if s not in SUPERCLASSES]
  if bad or not names or len(set(names)) != len(names):
    raise ValueError(
      f"task set {NAME!r}: superclasses must be distinct names from {', '.join(SUPERCLASSES)}; "
      f"got {names}"
    )
  return sorted(SUPERCLASSES.index(s) for s in names)


def _collect(source, tasks: list[int], per_class: int | None, size: int):
  """Reads ``source`` in index order, keeping up to ``per_class`` images of each fine class
  of the chosen superclasses; stops as soon as every class is full."""
  wanted = np.isin(FINE_TO_COARSE, tasks)
  quota = np.where(wanted, per_class if per_class is not None else len(source), 0)
  kept = {t: ([], []) for t in tasks}
  for i in range(len(source)):
    if per_class is not None and not quota.any():
      break
    example = source[i]
    fine = int(example["label"])
    if quota[fine] <= 0:
      continue
    quota[fine] -= 1
    xs, ys = kept[int(FINE_TO_COARSE[fine])]
    xs.append(_source.to_float_image(example["image"], size))
    ys.append(CLASS_IN_TASK[fine])
  return kept


def cifar100_superclasses(
  examples_per_class: int | None = 100,
  test_examples_per_class: int | None = 100,
  image_size: int = 32,
  superclasses: tuple | None = None,
  data_dir: str | None = None,
) -> TaskSet:
  """CIFAR-100 as 20 tasks: task s classifies images of superclass s among its 5 classes.

  Each task is named after its superclass (``aquatic_mammals``, ``fish``, ...) and is a
  5-way softmax; an image's class is the rank of its fine label among the superclass's 5
  fine labels in TFDS's index order (e.g. ``aquatic_mammals``: beaver 0, dolphin 1, otter 2,
  seal 3, whale 4). The superclass is looked up from the fine label (the standard CIFAR-100
  table, :data:`FINE_TO_COARSE`). Tasks have disjoint inputs (per-task p_i(x)).

  Splits: TFDS ``train`` -> D^tr and ``test`` -> D^test. Subsampling: the first
  ``examples_per_class`` training images of every fine class in TFDS's (fixed, shuffled at
  preparation) order, and the first ``test_examples_per_class`` test images (None: all;
  CIFAR-100 has 500 / 100 per class). Images: RGB ``[image_size, image_size, 3]`` in [0, 1]
  (32 is the native size; others are bilinear resizes).

  Args:
    examples_per_class, test_examples_per_class: per fine class (defaults 100 / 100).
    image_size: input side (default 32).
    superclasses: names of a subset of :data:`SUPERCLASSES` (default: all 20).
    data_dir: where the prepared ``cifar100`` lies (default ``$TFDS_DATA_DIR`` or
      ``~/tensorflow_datasets``); never downloaded (see docs/data.md).
  """
  _source.check_size(NAME, "examples_per_class", examples_per_class)
  _source.check_size(NAME, "test_examples_per_class", test_examples_per_class)
  _source.check_size(NAME, "image_size", image_size)
  tasks = _chosen(superclasses)
  train_src, test_src = _source.load_splits(NAME, DATASET, ("train", "test"), data_dir)
  train = _collect(train_src, tasks, examples_per_class, image_size)
  test = _collect(test_src, tasks, test_examples_per_class, image_size)
  for split, kept in (("train", train), ("test", test)):
    empty = [SUPERCLASSES[t] for t in tasks if not kept[t][0]]
    if empty:
      raise ValueError(f"task set {NAME!r}: no {split} images of superclasses {empty}")
  specs = [TaskSpec(SUPERCLASSES[t], "softmax_ce", 5) for t in tasks]
  pack = lambda kept: [(np.stack(kept[t][0]), np.array(kept[t][1])) for t in tasks]
  return make_taskset(NAME, specs, pack(train), pack(test))
