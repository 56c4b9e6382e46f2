"""Omniglot alphabets as tasks: one task per alphabet, its characters as the classes."""

import collections

import numpy as np

from mtl_jax.data.tfds_sets import _source
from mtl_jax.tasks import TaskSet, TaskSpec, make_taskset

NAME = "omniglot_alphabets"
DATASET = "omniglot"
NUM_ALPHABETS = 50


def _scan(sources, num_alphabets: int | None, size: int):
  """``{alphabet: {character: [image, ...]}}`` over every source, in index order."""
  drawings = collections.defaultdict(lambda: collections.defaultdict(list))
  for source in sources:
    for i in range(len(source)):
      example = source[i]
      alphabet = int(example["alphabet"])
      if num_alphabets is not None and alphabet >= num_alphabets:
        continue
      image = _source.to_float_image(example["image"], size, gray=True, invert=True)
      drawings[alphabet][int(example["label"])].append(image)
  return drawings


def _alphabet_task(alphabet: int, chars: dict, examples_per_class: int):
  """One alphabet's spec and splits; characters with fewer than 2 drawings are left out."""
  chars = {c: d for c, d in chars.items() if len(d) >= 2}
  if not chars:
    return None
  train, test = ([], []), ([], [])
  for k, char in enumerate(sorted(chars)):  # class k: the k-th character id of the alphabet
    d = chars[char]
    n = min(examples_per_class, len(d) - 1)
    for (xs, ys), part in ((train, d[:n]), (test, d[n:])):
      xs += part
      ys += [k] * len(part)
  spec = TaskSpec(f"alphabet{alphabet:02d}", "softmax_ce", len(chars))
  return spec, (np.stack(train[0]), np.array(train[1])), (np.stack(test[0]), np.array(test[1]))


def omniglot_alphabets(
  num_alphabets: int | None = None,
  examples_per_class: int = 15,
  image_size: int = 28,
  data_dir: str | None = None,
) -> TaskSet:
  """Omniglot (TFDS ``omniglot``) as T ≤ 50 tasks: task a classifies alphabet a's characters.

  Task ``alphabetNN`` (NN: TFDS's alphabet id, 0..49) is a softmax over that alphabet's
  characters (14 to 55 classes; outputs padded to the largest); class k is the alphabet's
  k-th character in TFDS label order. Tasks have disjoint inputs (per-task p_i(x)).

  Splits: TFDS's ``train`` (background, 30 alphabets) and ``test`` (evaluation, 20
  alphabets) splits are pooled to get all 50; then each character's drawings (20 in
  Omniglot), in TFDS order, go ``min(examples_per_class, n - 1)`` to D^tr and the rest to
  D^test (default 15 / 5). Characters with a single drawing are left out, and alphabets left
  with no character. ``num_alphabets`` keeps alphabet ids 0..num_alphabets-1 (default: all).

  Images: the first channel of the 105×105 image, inverted (strokes 1, background 0),
  resized bilinearly to ``[image_size, image_size, 1]`` in [0, 1] (default 28).

  Args:
    num_alphabets: keep alphabets with id < num_alphabets (None: all 50).
    examples_per_class: training drawings per character (default 15).
    image_size: input side (default 28).
    data_dir: where the prepared ``omniglot`` lies (default ``$TFDS_DATA_DIR`` or
      ``~/tensorflow_datasets``); never downloaded (see docs/data.md).
  """
  _source.check_size(NAME, "num_alphabets", num_alphabets)
  _source.check_size(NAME, "examples_per_class", examples_per_class)
  _source.check_size(NAME, "image_size", image_size)
  sources = _source.load_splits(NAME, DATASET, ("train", "test"), data_dir)
  drawings = _scan(sources, num_alphabets, image_size)
  tasks = [_alphabet_task(a, drawings[a], examples_per_class) for a in sorted(drawings)]
  tasks = [t for t in tasks if t is not None]
  if not tasks:
    raise ValueError(
      f"task set {NAME!r}: no alphabet has a character with at least 2 drawings "
      f"(read {sum(len(s) for s in sources)} examples)"
    )
  specs, train, test = zip(*tasks)
  return make_taskset(NAME, specs, train, test)
