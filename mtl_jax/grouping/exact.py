"""Exact TAG group selection: dynamic programming over the partitions of the tasks.

Each task is served by one chosen group, so an optimal selection induces a partition of
the tasks into at most k blocks (the tasks each group serves), worth Σ_U w(U) with
w(U) = max_{G ⊇ U} Σ_{t∈U} score(t, G); conversely the maximising groups of any such
partition score at least its worth. So OPT = max over partitions into ≤ k blocks of
Σ w(U): f_j(M) = max(f_{j−1}(M), max_{U ⊆ M, U ∋ min(M)} w(U) + f_{j−1}(M∖U)),
O(k·3^T) in vectorised numpy. Subsets are bit masks over the task indices.
"""

import numpy as np

from mtl_jax.grouping.objective import canonical, group_scores


def _pairs(t: int) -> tuple[np.ndarray, np.ndarray]:
  """Every (mask, sub) with sub ⊆ mask, as two int arrays of length 3^T (base-3 digits)."""
  code = np.arange(3**t, dtype=np.int64)
  mask = np.zeros_like(code)
  sub = np.zeros_like(code)
  for i in range(t):
    d = (code // 3**i) % 3
    mask |= (d > 0).astype(np.int64) << i
    sub |= (d == 2).astype(np.int64) << i
  return mask, sub


def _block_values(a: np.ndarray, mask: np.ndarray, sub: np.ndarray):
  """w[U] = max over groups G ⊇ U of Σ_{t∈U} score(t, G), and the first maximising G."""
  t = a.shape[0]
  n = 1 << t
  member = ((np.arange(n)[:, None] >> np.arange(t)[None]) & 1).astype(bool)
  score = np.where(member, group_scores(a, member), 0.0)  # [2^T, T]
  keep = sub > 0
  g, u = mask[keep], sub[keep]
  val = np.zeros(len(g))
  for i in range(t):
    val += ((u >> i) & 1) * score[g, i]
  order = np.lexsort((g, -val, u))  # by U, best value first, then smallest G
  u, first = np.unique(u[order], return_index=True)
  w = np.full(n, -np.inf)
  best_g = np.zeros(n, np.int64)
  w[u], best_g[u] = val[order][first], g[order][first]
  return w, best_g


def _segment_max(vals: np.ndarray, starts: np.ndarray, n: int) -> np.ndarray:
  out = np.full(n, -np.inf)
  out[1:] = np.maximum.reduceat(vals, starts)
  return out


def exact_groups(a: np.ndarray, k: int) -> list[tuple[int, ...]]:
  """The optimal selection of at most ``k`` groups for a checked ``[T, T]`` matrix."""
  t = a.shape[0]
  mask, sub = _pairs(t)
  w, best_g = _block_values(a, mask, sub)
  low = mask & -mask
  keep = (sub & low) != 0  # blocks containing the lowest task of M: each partition once
  order = np.argsort(mask[keep], kind="stable")
  pm, ps = mask[keep][order], sub[keep][order]
  starts = np.searchsorted(pm, np.arange(1, 1 << t))
  fs = [np.full(1 << t, -np.inf)]
  fs[0][0] = 0.0
  for _ in range(k):
    cand = w[ps] + fs[-1][pm ^ ps]
    fs.append(np.maximum(fs[-1], _segment_max(cand, starts, 1 << t)))
  blocks, m, j = [], (1 << t) - 1, k
  while m:  # walk back through the table: the first block achieving each optimum
    if fs[j - 1][m] == fs[j][m]:
      j -= 1
      continue
    lo = starts[m - 1]
    hi = starts[m] if m < (1 << t) - 1 else len(pm)
    vals = w[ps[lo:hi]] + fs[j - 1][m ^ ps[lo:hi]]
    u = int(ps[lo + int(np.argmax(vals == fs[j][m]))])
    blocks.append(u)
    m, j = m ^ u, j - 1
  return canonical(tuple(i for i in range(t) if (int(best_g[u]) >> i) & 1) for u in blocks)
