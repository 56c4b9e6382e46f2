"""Approximate TAG group selection for many tasks: beam search, then swap local search."""

import itertools

import numpy as np

from mtl_jax.grouping.objective import ALONE, canonical, group_scores, members


def all_groups(t: int) -> list[tuple[int, ...]]:
  """Every non-empty subset of ``range(t)``, by size then lexicographically."""
  return [g for n in range(1, t + 1) for g in itertools.combinations(range(t), n)]


def _mean_score(a: np.ndarray, g: list[int]) -> float:
  sub = a[np.ix_(g, g)]
  return float((sub.sum() - np.trace(sub)) / (len(g) * (len(g) - 1)))


def grown_groups(a: np.ndarray) -> list[tuple[int, ...]]:
  """Candidate groups for many tasks: greedy growth from every pair, every prefix kept."""
  t = a.shape[0]
  out = {tuple(range(t))} | {(i,) for i in range(t)}
  for i, j in itertools.combinations(range(t), 2):
    g = [i, j]
    out.add(tuple(g))
    while len(g) < t:
      rest = [x for x in range(t) if x not in g]
      vals = [_mean_score(a, g + [x]) for x in rest]
      g.append(rest[int(np.argmax(vals))])
      out.add(tuple(sorted(g)))
  return sorted(out, key=lambda g: (len(g), g))


def beam_groups(a: np.ndarray, k: int, width: int, candidates=None) -> list[tuple[int, ...]]:
  """Beam search over selections (``width`` kept per size), then swap-based local search.

  ``candidates``: the groups to choose from (default :func:`grown_groups`).
  """
  t = a.shape[0]
  groups = candidates if candidates is not None else grown_groups(a)
  score = group_scores(a, members(groups, t))
  beams = [((), np.full(t, -np.inf))]  # (chosen candidate ids, per-task best score)
  best, best_val = None, -np.inf
  for _ in range(k):
    pool = {}
    for chosen, cur in beams:
      new = np.maximum(cur[None], score)
      vals = np.where(np.isfinite(new), new, 2 * ALONE * t).sum(1)
      for c in np.argsort(-vals, kind="stable")[:width]:
        key = tuple(sorted(set(chosen) | {int(c)}))
        pool.setdefault(key, (float(vals[c]), new[c]))
    ranked = sorted(pool.items(), key=lambda kv: (-kv[1][0], kv[0]))[:width]
    beams = [(key, cur) for key, (_, cur) in ranked]
    for key, (_, cur) in ranked:
      if np.isfinite(cur).all() and cur.mean() > best_val + 1e-12:
        best, best_val = key, float(cur.mean())
  return canonical(groups[i] for i in _swap_search(score, list(best)))


def _swap_search(score: np.ndarray, chosen: list[int]) -> list[int]:
  """Replaces one chosen group by the best other candidate while that improves the mean."""
  value = score[chosen].max(0).mean()
  improved = True
  while improved:
    improved = False
    for p in range(len(chosen)):
      others = np.delete(score[chosen], p, 0).max(0) if len(chosen) > 1 else None
      new = score if others is None else np.maximum(others[None], score)
      vals = new.mean(1)
      c = int(np.argmax(vals))
      if vals[c] > value + 1e-12:
        chosen[p], value, improved = c, vals[c], True
  return chosen
