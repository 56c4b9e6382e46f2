"""``select_groups``: at most k task groups maximising TAG's objective, exact or by beam."""

from mtl_jax.grouping.beam import all_groups, beam_groups
from mtl_jax.grouping.exact import exact_groups
from mtl_jax.grouping.objective import check_affinity

EXACT_MAX_TASKS = 12  # method="auto": exact up to here, beam search beyond
EXACT_LIMIT = 14  # method="exact" refuses more tasks (memory and time grow as 3^T)
METHODS = ("auto", "exact", "beam")


def select_groups(
  affinity, num_groups: int, method: str = "auto", beam_width: int = 16
) -> list[tuple[int, ...]]:
  """At most ``num_groups`` task groups maximising TAG's :func:`grouping_score`.

  Groups may overlap; every task is covered; each task is served by its best chosen group
  (:func:`serving_groups`).

  Args:
    affinity: ``[T, T]`` with ``affinity[i, j]`` = effect of task i's step on task j.
    num_groups: the most groups to choose (>= 1).
    method: ``"exact"`` (dynamic programming over partitions, O(k·3^T): about a second
      at T = 12, refused beyond 14), ``"beam"`` (beam search over the candidates — every
      subset up to 12 tasks, beyond that groups grown greedily from each pair — keeping
      ``beam_width`` partial selections per level, then swap local search) or
      ``"auto"`` (exact up to T = 12, beam beyond).

  Returns:
    Sorted list of sorted task-index tuples.
  """
  a = check_affinity(affinity, num_groups)
  t = a.shape[0]
  if method not in METHODS:
    raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
  if method == "auto":
    method = "exact" if t <= EXACT_MAX_TASKS else "beam"
  if method == "exact":
    if t > EXACT_LIMIT:
      raise ValueError(f"exact selection handles up to {EXACT_LIMIT} tasks, got {t}: use beam")
    return exact_groups(a, int(num_groups))
  cands = all_groups(t) if t <= EXACT_MAX_TASKS else None
  return beam_groups(a, int(num_groups), beam_width, cands)
