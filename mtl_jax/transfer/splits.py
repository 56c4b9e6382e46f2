"""Which rows each run sees: source/target task sets, n examples per class, k folds.

Conventions: ``n`` in an adaptation curve is the number of target training examples *per
class* for classification (a class-balanced subset, drawn without replacement, one per
seed) and the number of examples for regression. The largest balanced subset has ``n =``
:func:`max_per_class` (the smallest class count in D^tr_b), which is what "all" means.
"""

import dataclasses

import numpy as np

from mtl_jax.tasks import TaskSet


def select_tasks(ts: TaskSet, tasks: list[int], name: str | None = None) -> TaskSet:
  """The task set of ``tasks`` (indices, in that order) of ``ts``: same rows, same splits.

  Padding is cut to the largest kept task. Used to hold a target task out of a source.
  """
  idx = np.asarray(tasks, np.int64)
  n_tr, n_te = ts.n_train[idx], ts.n_test[idx]
  pick = lambda a, n: None if a is None else np.array(a[idx][:, : int(n.max())])
  return dataclasses.replace(
    ts,
    name=name or ts.name,
    specs=tuple(ts.specs[i] for i in idx),
    x_train=pick(ts.x_train, n_tr),
    y_train=pick(ts.y_train, n_tr),
    n_train=np.array(n_tr),
    x_test=pick(ts.x_test, n_te),
    y_test=pick(ts.y_test, n_te),
    n_test=np.array(n_te),
    descriptors=None if ts.descriptors is None else np.array(ts.descriptors[idx]),
    label_mean=None if ts.label_mean is None else np.array(ts.label_mean[idx]),
    label_std=None if ts.label_std is None else np.array(ts.label_std[idx]),
  )


def task_index(ts: TaskSet, name: str, field: str) -> int:
  """The index of task ``name`` (a ValueError naming ``field`` and the valid names)."""
  if name not in ts.names:
    raise ValueError(
      f"{field} = {name!r} is not a task of {ts.name!r}; valid: {', '.join(ts.names)}"
    )
  return ts.names.index(name)


def classes(y: np.ndarray, kind: str) -> np.ndarray | None:
  """Class index of every row for a softmax task (labels as stored), else None."""
  return np.asarray(y)[:, 0].astype(np.int64) if kind == "softmax_ce" else None


def max_per_class(y: np.ndarray, kind: str) -> int:
  """The largest n with n rows of every class (the number of rows for regression)."""
  c = classes(y, kind)
  if c is None:
    return len(y)
  return int(np.bincount(c).min()) if len(c) else 0


def subset(y: np.ndarray, kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
  """Rows of a subset with ``n`` examples per class (``n`` rows for regression), sorted."""
  c = classes(y, kind)
  if c is None:
    return np.sort(rng.choice(len(y), size=min(n, len(y)), replace=False))
  rows = [rng.choice(np.flatnonzero(c == k), size=n, replace=False) for k in np.unique(c)]
  return np.sort(np.concatenate(rows))


def kfold(
  rows: np.ndarray, k: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray]]:
  """``k`` (train, validation) splits of ``rows``: every row is validated exactly once."""
  if not 2 <= k <= len(rows):
    raise ValueError(f"cv.folds must be in [2, {len(rows)}] (rows of D^tr), got {k}")
  parts = np.array_split(rng.permutation(rows), k)
  return [
    (np.sort(np.concatenate(parts[:i] + parts[i + 1 :])), np.sort(parts[i])) for i in range(k)
  ]
