"""Tasks and task sets: 𝒯_i = {p_i(x), p_i(y|x), L_i} with D_i^tr and D_i^test.

A :class:`TaskSet` holds T tasks as padded arrays with a leading task axis so that the
training step can gather a batch of tasks without a Python loop:

* ``x_train [T, N_max, *input_shape]``, ``y_train [T, N_max, Y]``, ``n_train [T]`` (and
  the same for test). Rows past ``n_train[i]`` are padding and are never sampled.
* Labels share one float array of width ``Y``: a softmax task stores its class index in
  column 0, a sigmoid (binary / multi-label) task its 0/1 labels in the first
  ``output_size`` columns, a regression task its targets in the first ``output_size``
  columns. Unused columns are 0.
* Every task's model output is padded to ``max output_size``; a mask tells each task's
  loss which outputs are real (classification tasks with different class counts share one
  stack this way).
* Missing labels: an example may lack some tasks' labels (annotations collected
  separately, CelebA-style). :func:`make_taskset` takes them as ``(x, y, labelled)``
  triples; a row whose task label is missing is stored as NaN in every column of ``y``
  (so the mask travels with ``y`` through every gather), and
  :meth:`TaskSet.labelled` returns the ``[T, N_max]`` mask.
"""

import dataclasses
from collections.abc import Sequence

import numpy as np

LOSS_KINDS = ("softmax_ce", "sigmoid_ce", "mse")
KIND_ID = {k: i for i, k in enumerate(LOSS_KINDS)}
# The metric each loss kind is judged by, and whether higher is better (for Δm).
PRIMARY_METRIC = {"softmax_ce": "accuracy", "sigmoid_ce": "accuracy", "mse": "mse"}
HIGHER_IS_BETTER = {"accuracy": True, "mse": False, "r2": True, "loss": False}


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """One task's name, loss L_i and output size.

  Attributes:
    name: unique task name (used in logs and summaries).
    loss: one of ``LOSS_KINDS``: ``softmax_ce`` (classification, ``output_size``
      classes), ``sigmoid_ce`` (binary/multi-label, ``output_size`` labels) or ``mse``
      (regression, ``output_size`` targets).
    output_size: number of classes / labels / targets.
  """

  name: str
  loss: str
  output_size: int

  def __post_init__(self):
    if self.loss not in LOSS_KINDS:
      raise ValueError(
        f"task {self.name!r}: unknown loss {self.loss!r}; expected one of {LOSS_KINDS}"
      )
    if self.output_size < 1:
      raise ValueError(f"task {self.name!r}: output_size must be >= 1, got {self.output_size}")

  @property
  def primary_metric(self) -> str:
    return PRIMARY_METRIC[self.loss]


@dataclasses.dataclass
class TaskSet:
  """T tasks with padded per-task train/test splits (numpy, host side).

  Attributes:
    name: the task set's name.
    specs: one :class:`TaskSpec` per task.
    x_train, y_train, n_train, x_test, y_test, n_test: padded splits (see module doc).
    descriptors: optional metadata vector z_i per task, ``[T, d]``.
    shared_inputs: True when every task sees the same inputs (multi-label learning:
      one p(x)); the sampler then draws one set of examples for all tasks.
    label_mean, label_std: ``[T, Y]`` per-task label standardisation fitted on D^tr
      (identity for non-regression tasks); ``y_*`` are stored standardised and
      :meth:`unstandardize` maps predictions back.
  """

  name: str
  specs: tuple[TaskSpec, ...]
  x_train: np.ndarray
  y_train: np.ndarray
  n_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  n_test: np.ndarray
  descriptors: np.ndarray | None = None
  shared_inputs: bool = False
  label_mean: np.ndarray | None = None
  label_std: np.ndarray | None = None

  @property
  def num_tasks(self) -> int:
    return len(self.specs)

  @property
  def names(self) -> list[str]:
    return [s.name for s in self.specs]

  @property
  def input_shape(self) -> tuple[int, ...]:
    return tuple(self.x_train.shape[2:])

  @property
  def has_missing_labels(self) -> bool:
    """True when some example lacks some task's label (NaN rows in ``y_train``/``y_test``)."""
    return bool(np.isnan(self.y_train[..., 0]).any() or np.isnan(self.y_test[..., 0]).any())

  def labelled(self, split: str = "train") -> np.ndarray:
    """``[T, N_max]`` boolean: real rows of ``split`` whose task label is present."""
    y, n = getattr(self, f"y_{split}"), getattr(self, f"n_{split}")
    return ~np.isnan(y[..., 0]) & (np.arange(y.shape[1])[None, :] < n[:, None])

  @property
  def output_size(self) -> int:
    """The padded output width shared by all tasks' heads."""
    return max(s.output_size for s in self.specs)

  @property
  def label_width(self) -> int:
    return self.y_train.shape[-1]

  def kind_ids(self) -> np.ndarray:
    return np.array([KIND_ID[s.loss] for s in self.specs], np.int32)

  def output_mask(self) -> np.ndarray:
    """``[T, output_size]`` boolean: which outputs each task really has."""
    sizes = np.array([s.output_size for s in self.specs])
    return np.arange(self.output_size)[None, :] < sizes[:, None]

  def unstandardize(self, y: np.ndarray, task: int | np.ndarray | None = None):
    """Maps standardised labels/predictions ``[..., Y]`` back to the task's units."""
    if self.label_mean is None:
      return y
    mean, std = self.label_mean, self.label_std
    if task is not None:
      mean, std = mean[task], std[task]
    width = y.shape[-1]
    return y * std[..., :width] + mean[..., :width]


def _pad_stack(arrays: Sequence[np.ndarray], n_max: int) -> np.ndarray:
  out = np.zeros((len(arrays), n_max) + arrays[0].shape[1:], np.float32)
  for i, a in enumerate(arrays):
    out[i, : len(a)] = a
  return out


def _as_label_matrix(spec: TaskSpec, y: np.ndarray, width: int, where: str) -> np.ndarray:
  y = np.asarray(y)
  if spec.loss == "softmax_ce":
    if y.ndim != 1:
      raise ValueError(
        f"task {spec.name!r} ({where}): softmax labels must be 1-D class "
        f"indices, got shape {y.shape}"
      )
    if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
      raise ValueError(f"task {spec.name!r} ({where}): class labels must be integers")
    if y.size and (y.min() < 0 or y.max() >= spec.output_size):
      raise ValueError(
        f"task {spec.name!r} ({where}): labels out of range: found "
        f"[{int(y.min())}, {int(y.max())}], expected 0..{spec.output_size - 1}"
      )
    y = y[:, None]
  else:
    if y.ndim == 1:
      y = y[:, None]
    if y.ndim != 2 or y.shape[1] != spec.output_size:
      raise ValueError(
        f"task {spec.name!r} ({where}): labels must have shape "
        f"[N, {spec.output_size}], got {y.shape}"
      )
    if spec.loss == "sigmoid_ce" and not np.all((y == 0) | (y == 1)):
      raise ValueError(f"task {spec.name!r} ({where}): sigmoid labels must be 0 or 1")
  out = np.zeros((len(y), width), np.float32)
  out[:, : y.shape[1]] = y
  return out


def _check_specs(name: str, specs: tuple, train, test) -> None:
  names = [s.name for s in specs]
  if not specs:
    raise ValueError(f"task set {name!r} has no tasks")
  if len(set(names)) != len(names):
    raise ValueError(f"task set {name!r}: duplicate task names {names}")
  for split, data in (("train", train), ("test", test)):
    if len(data) != len(specs):
      raise ValueError(f"task set {name!r}: {len(specs)} task specs but {len(data)} {split} splits")


def _check_example(spec, x: np.ndarray, y, where: str, input_shape) -> None:
  if len(x) == 0:
    raise ValueError(f"task {spec.name!r}: empty {where.split()[0]} dataset")
  if len(x) != len(y):
    raise ValueError(f"task {spec.name!r} ({where}): x has {len(x)} examples but y has {len(y)}")
  if not np.all(np.isfinite(x)):
    raise ValueError(f"task {spec.name!r} ({where}): inputs contain NaN or Inf")
  if not np.all(np.isfinite(np.asarray(y, np.float64))):
    raise ValueError(
      f"task {spec.name!r} ({where}): labels contain NaN or Inf (for missing labels give "
      "(x, y, labelled) with a boolean mask)"
    )
  if input_shape is not None and x.shape[1:] != input_shape:
    raise ValueError(
      f"task {spec.name!r} ({where}): input shape {x.shape[1:]} differs "
      f"from the first task's {input_shape}"
    )


def _split_labelled(spec, pair, where: str):
  """``(x, y, labelled)`` or ``(x, y)`` → ``(x, y, labelled [N] bool or None)``.

  Rows whose label is missing may hold anything in ``y`` (NaN, -1, ...): they are set to
  a valid placeholder here, checked like the rest, and become NaN once packed.
  """
  if len(pair) not in (2, 3):
    raise ValueError(
      f"task {spec.name!r} ({where}): expected (x, y) or (x, y, labelled), got {len(pair)} items"
    )
  if len(pair) == 2 or pair[2] is None:
    return pair[0], pair[1], None
  x, y, lab = pair
  lab, y = np.asarray(lab), np.array(y)
  if lab.dtype != bool or lab.shape != (len(y),):
    raise ValueError(
      f"task {spec.name!r} ({where}): labelled must be a boolean [N={len(y)}] mask, "
      f"got dtype {lab.dtype} and shape {lab.shape}"
    )
  if not lab.any():
    raise ValueError(f"task {spec.name!r} ({where}): no example is labelled")
  if y.dtype.kind not in "fiub":
    raise ValueError(f"task {spec.name!r} ({where}): labels must be numeric, got {y.dtype}")
  y[~lab] = 0
  return x, y, lab


def _pack_split(specs: tuple, data, split: str, width: int, input_shape):
  """Checks one split of every task and pads it into ``(x, y, n)`` stacks (NaN rows of
  ``y`` for missing labels)."""
  xs, ys = [], []
  for spec, pair in zip(specs, data):
    where = f"{split} split"
    x, y, lab = _split_labelled(spec, tuple(pair), where)
    x = np.asarray(x, np.float32)
    _check_example(spec, x, y, where, input_shape)
    input_shape = x.shape[1:]
    xs.append(x)
    ys.append(_as_label_matrix(spec, y, width, where))
    if lab is not None:
      ys[-1][~lab] = np.nan
  n = np.array([len(x) for x in xs], np.int32)
  return (_pad_stack(xs, n.max()), _pad_stack(ys, n.max()), n), input_shape


def _standardize(specs: tuple, packed: dict, mean: np.ndarray, std: np.ndarray):
  """Regression labels to zero mean, unit std per task, with D_i^tr's statistics only."""
  _, y_tr, n_tr = packed["train"]
  for i, spec in enumerate(specs):
    if spec.loss == "mse":
      yi = y_tr[i, : n_tr[i], : spec.output_size]
      yi = yi[~np.isnan(yi[:, 0])]  # labelled rows only
      mean[i, : spec.output_size] = yi.mean(0)
      std[i, : spec.output_size] = np.maximum(yi.std(0), 1e-8)
  out = {}
  for split in ("train", "test"):
    x, y, n = packed[split]
    mask = (np.arange(y.shape[1])[None, :] < n[:, None])[..., None]
    out[split] = (x, np.where(mask, (y - mean[:, None]) / std[:, None], 0.0), n)
  return out, mean, std


def _check_shared_inputs(name: str, specs: tuple, train, test) -> None:
  """With ``shared_inputs`` every task must have the first task's x, split by split.

  The sampler draws one set of example ids and the step feeds ``x`` of the first sampled
  task to all of them, so task b's labels must belong to the same examples as task a's.
  """
  first = specs[0].name
  for split, data in (("train", train), ("test", test)):
    x0 = np.asarray(data[0][0], np.float32)
    for spec, pair in zip(specs[1:], data[1:]):
      x = np.asarray(pair[0], np.float32)
      if len(x) != len(x0):
        raise ValueError(
          f"task set {name!r} has shared_inputs=True but task {spec.name!r} has "
          f"{len(x)} {split} examples and task {first!r} has {len(x0)}"
        )
      differ = np.flatnonzero(np.any((x != x0).reshape(len(x), -1), axis=1))
      if differ.size:
        raise ValueError(
          f"task set {name!r} has shared_inputs=True but task {spec.name!r}'s {split} "
          f"inputs differ from task {first!r}'s (first at row {differ[0]}); every task "
          "must see the same x in the same order"
        )


def make_taskset(
  name: str,
  specs: Sequence[TaskSpec],
  train: Sequence[tuple[np.ndarray, np.ndarray]],
  test: Sequence[tuple[np.ndarray, np.ndarray]],
  *,
  descriptors: np.ndarray | None = None,
  shared_inputs: bool = False,
  standardize_labels: bool = True,
) -> TaskSet:
  """Validates per-task ``(x, y)`` splits and packs them into a padded :class:`TaskSet`.

  Args:
    name: task set name.
    specs: one spec per task.
    train, test: one ``(x [N_i, ...], y)`` pair per task; ``y`` as described in the
      module docstring (class indices, 0/1 matrix or regression targets). Missing labels:
      give ``(x, y, labelled)`` instead, ``labelled`` a boolean ``[N_i]`` mask (True: the
      example has this task's label); ``y`` on unlabelled rows is ignored (NaN, -1, ...
      are fine there). Each task needs at least one labelled example per split. Training
      then averages each task's loss over its labelled examples only and evaluation
      counts only labelled test examples (``docs/data.md``, "Missing labels").
    descriptors: optional ``[T, d]`` task metadata z_i.
    shared_inputs: every task sees the same x (multi-label learning); checked: every
      task's train and test x must equal the first task's, row by row.
    standardize_labels: standardise regression labels per task with the mean and
      standard deviation of D_i^tr only (the lecture's tip: labels on the same scale).

  Returns:
    The packed task set. Raises ``ValueError`` naming the task and field on bad input.
  """
  specs = tuple(specs)
  _check_specs(name, specs, train, test)
  width = max(1, max(s.output_size if s.loss != "softmax_ce" else 1 for s in specs))
  packed = {}
  input_shape = None
  for split, data in (("train", train), ("test", test)):
    packed[split], input_shape = _pack_split(specs, data, split, width, input_shape)
  if shared_inputs:
    _check_shared_inputs(name, specs, train, test)
  mean = np.zeros((len(specs), width), np.float32)
  std = np.ones((len(specs), width), np.float32)
  if standardize_labels:
    packed, mean, std = _standardize(specs, packed, mean, std)
  if descriptors is not None:
    descriptors = np.asarray(descriptors, np.float32)
    if descriptors.ndim != 2 or descriptors.shape[0] != len(specs):
      raise ValueError(
        f"task set {name!r}: descriptors must be [T={len(specs)}, d], got {descriptors.shape}"
      )
  return TaskSet(
    name=name,
    specs=specs,
    x_train=packed["train"][0],
    y_train=packed["train"][1].astype(np.float32),
    n_train=packed["train"][2],
    x_test=packed["test"][0],
    y_test=packed["test"][1].astype(np.float32),
    n_test=packed["test"][2],
    descriptors=descriptors,
    shared_inputs=shared_inputs,
    label_mean=mean,
    label_std=std,
  )
