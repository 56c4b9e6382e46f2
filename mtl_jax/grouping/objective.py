"""TAG's grouping objective on an inter-task affinity matrix.

Convention: ``affinity[i, j] = Z_{i→j}``, the effect of task i's step on task j's loss
(positive: i's step lowered j's loss). A task's score in group G is the mean over G's
other members i of ``affinity[i, task]`` (``ALONE`` for a group of one); each task is
served by its best chosen group, and a selection is worth the mean of those scores.
"""

from collections.abc import Iterable, Sequence

import numpy as np

ALONE = -1e6  # a task's score in a group of its own (as in TAG's notebook)


def check_affinity(affinity, num_groups: int) -> np.ndarray:
  """``affinity`` as a float64 ``[T, T]`` array; ValueError naming what is wrong."""
  a = np.asarray(affinity, np.float64)
  if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 1:
    raise ValueError(f"affinity must be a non-empty square [T, T] matrix, got shape {a.shape}")
  if not np.all(np.isfinite(a)):
    raise ValueError("affinity has NaN/Inf entries")
  if int(num_groups) != num_groups or num_groups < 1:
    raise ValueError(f"num_groups must be an integer >= 1, got {num_groups}")
  return a


def members(groups: Sequence[Sequence[int]], t: int) -> np.ndarray:
  """``[C, T]`` booleans: task t belongs to group c."""
  m = np.zeros((len(groups), t), bool)
  for c, g in enumerate(groups):
    m[c, list(g)] = True
  return m


def group_scores(a: np.ndarray, member: np.ndarray) -> np.ndarray:
  """``[C, T]``: task t's TAG score in group c (−inf where t is not a member)."""
  size = member.sum(1, keepdims=True)
  sums = member.astype(np.float64) @ a - member * np.diag(a)[None]
  score = np.where(size > 1, sums / np.maximum(size - 1, 1), ALONE)
  return np.where(member, score, -np.inf)


def grouping_score(affinity, groups: Sequence[Sequence[int]]) -> float:
  """TAG's objective: the mean over tasks of the score of its best group among ``groups``.

  A task's score in group G is the mean over G's other members i of ``affinity[i, task]``
  (``ALONE`` = −1e6 for a group of one); an uncovered task makes the score −inf.
  """
  a = np.asarray(affinity, np.float64)
  if not groups:
    return -np.inf
  return float(group_scores(a, members(groups, a.shape[0])).max(0).mean())


def serving_groups(affinity, groups: Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
  """For each task, the group of ``groups`` that serves it (its best; ties: the first)."""
  a = np.asarray(affinity, np.float64)
  groups = [tuple(sorted(g)) for g in groups]
  best = group_scores(a, members(groups, a.shape[0])).argmax(0)
  return [groups[c] for c in best]


def canonical(groups: Iterable[Iterable[int]]) -> list[tuple[int, ...]]:
  """Distinct groups as sorted tuples, in sorted order (the selection's output form)."""
  return sorted({tuple(sorted(g)) for g in groups})
