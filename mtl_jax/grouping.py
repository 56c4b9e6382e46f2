"""Which tasks to train together: TAG inter-task affinity and group selection.

Fifty et al. (2021), "Efficiently Identifying Task Groupings for Multi-Task Learning":

* **Affinity in one run.** Every ``every`` steps of an ordinary all-task run, each task
  i's gradient of θ^sh takes a lookahead step (the run's own optax update, from the
  current optimiser state, which is then discarded), and every task j's loss is measured
  on the same batch: ``Z[i, j] = 1 − L_j(θ^sh_{+i}, θ^j) / L_j(θ^sh, θ^j)``. The T
  lookaheads are one ``vmap`` inside the compiled step (under ``lax.cond``), and the run's
  own update is :func:`mtl_jax.train.train_step`, untouched (its parameters are
  bit-identical to a run that measures nothing). The run's average of Z is TAG's
  inter-task affinity; :func:`affinity_run` also averages the cosine similarity of the
  same per-task gradients (TAG's "CS" baseline).
* **Group selection.** :func:`select_groups` picks at most ``num_groups`` (possibly
  overlapping) groups maximising TAG's objective (:func:`grouping_score`): exactly (a
  dynamic programme over partitions of the tasks, up to 14 tasks), or approximately by
  beam search plus local search for many tasks.
* **The whole procedure** (:func:`run_procedure`): affinities, groups for k = 1..K, one
  network per selected group, and per-task test metrics against all-together, every task
  alone and (for small T) the best grouping found by training every partition.

The matrix contract: ``affinity[i, j] = Z_{i→j}``, the effect of task i's step on task j's
loss (positive: i's step lowered j's loss).
"""

import dataclasses
import functools
import itertools
import json
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from mtl_jax import loop
from mtl_jax import metrics as metrics_lib
from mtl_jax.build import build_optimizer, prepare_run
from mtl_jax.data.sampling import DeviceData, sample_batch
from mtl_jax.gradients import Objective, per_task_grads, sampled_losses
from mtl_jax.tasks import TaskSet
from mtl_jax.train import TrainState

ALONE = -1e6  # a task's score in a group of its own (as in TAG's notebook)
EXACT_MAX_TASKS = 12  # method="auto": exact up to here, beam search beyond
EXACT_LIMIT = 14  # method="exact" refuses more tasks (memory and time grow as 3^T)
ESTIMATORS = ("lookahead", "cosine")


# ----------------------------------------------------------------------------- selection


def _check_affinity(affinity, num_groups: int) -> np.ndarray:
  a = np.asarray(affinity, np.float64)
  if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 1:
    raise ValueError(f"affinity must be a non-empty square [T, T] matrix, got shape {a.shape}")
  if not np.all(np.isfinite(a)):
    raise ValueError("affinity has NaN/Inf entries")
  if int(num_groups) != num_groups or num_groups < 1:
    raise ValueError(f"num_groups must be an integer >= 1, got {num_groups}")
  return a


def _members(groups: Sequence[Sequence[int]], t: int) -> np.ndarray:
  m = np.zeros((len(groups), t), bool)
  for c, g in enumerate(groups):
    m[c, list(g)] = True
  return m


def _group_scores(a: np.ndarray, member: np.ndarray) -> np.ndarray:
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
  return float(_group_scores(a, _members(groups, a.shape[0])).max(0).mean())


def serving_groups(affinity, groups: Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
  """For each task, the group of ``groups`` that serves it (its best; ties: the first)."""
  a = np.asarray(affinity, np.float64)
  groups = [tuple(sorted(g)) for g in groups]
  best = _group_scores(a, _members(groups, a.shape[0])).argmax(0)
  return [groups[c] for c in best]


def _all_groups(t: int) -> list[tuple[int, ...]]:
  return [g for n in range(1, t + 1) for g in itertools.combinations(range(t), n)]


def _grown_groups(a: np.ndarray) -> list[tuple[int, ...]]:
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


def _mean_score(a: np.ndarray, g: list[int]) -> float:
  sub = a[np.ix_(g, g)]
  return float((sub.sum() - np.trace(sub)) / (len(g) * (len(g) - 1)))


def _finish(groups) -> list[tuple[int, ...]]:
  return sorted({tuple(sorted(g)) for g in groups})


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
  score = np.where(member, _group_scores(a, member), 0.0)  # [2^T, T]
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


def _exact(a: np.ndarray, k: int) -> list[tuple[int, ...]]:
  """Exact TAG selection as a partition problem, solved by dynamic programming over subsets.

  Each task is served by one chosen group, so an optimal selection induces a partition of
  the tasks into at most k blocks (the tasks each group serves), worth Σ_U w(U) with
  w(U) = max_{G ⊇ U} Σ_{t∈U} score(t, G); conversely the maximising groups of any such
  partition score at least its worth. So OPT = max over partitions into ≤ k blocks of
  Σ w(U): f_j(M) = max(f_{j−1}(M), max_{U ⊆ M, U ∋ min(M)} w(U) + f_{j−1}(M∖U)),
  O(k·3^T) in vectorised numpy.
  """
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
  return _finish(tuple(i for i in range(t) if (int(best_g[u]) >> i) & 1) for u in blocks)


def _segment_max(vals: np.ndarray, starts: np.ndarray, n: int) -> np.ndarray:
  out = np.full(n, -np.inf)
  out[1:] = np.maximum.reduceat(vals, starts)
  return out


def _beam(a: np.ndarray, k: int, width: int, candidates=None) -> list[tuple[int, ...]]:
  """Beam search over selections (``width`` kept per size), then swap-based local search."""
  t = a.shape[0]
  groups = candidates if candidates is not None else _grown_groups(a)
  score = _group_scores(a, _members(groups, t))
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
  return _finish(groups[i] for i in _swap_search(score, list(best)))


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
  a = _check_affinity(affinity, num_groups)
  t = a.shape[0]
  if method == "auto":
    method = "exact" if t <= EXACT_MAX_TASKS else "beam"
  if method == "exact":
    if t > EXACT_LIMIT:
      raise ValueError(f"exact selection handles up to {EXACT_LIMIT} tasks, got {t}: use beam")
    return _exact(a, int(num_groups))
  if method == "beam":
    cands = _all_groups(t) if t <= EXACT_MAX_TASKS else None
    return _beam(a, int(num_groups), beam_width, cands)
  raise ValueError(f"unknown method {method!r}; valid: auto, exact, beam")


# ------------------------------------------------------------------------------ affinity


class AffinityState(NamedTuple):
  """A :class:`TrainState` plus the running sums of the measured affinities.

  ``step`` and ``params`` forward to the train state, so :func:`mtl_jax.train.make_chunk`
  and :func:`mtl_jax.loop.train_run` run it like a plain state.
  """

  train: TrainState
  z_sum: jax.Array  # [T, T] Σ over measured steps of Z_{i→j}
  cos_sum: jax.Array  # [T, T] Σ of the cosine similarity of the shared gradients
  count: jax.Array  # number of measured steps

  @property
  def step(self):
    return self.train.step

  @property
  def params(self):
    return self.train.params


def lookahead_affinity(
  obj: Objective,
  optimizer: optax.GradientTransformation,
  params,
  opt_state,
  batch,
  sgd_lr: float | None = None,
) -> tuple[jax.Array, jax.Array]:
  """TAG's lookahead affinity and the gradient cosine similarity on one all-task batch.

  Each task i's gradient of θ^sh (zeros elsewhere) goes through ``optimizer.update`` from
  ``opt_state`` (the result state is discarded); θ^sh_{+i} then meets every task j's own
  θ^j on the same batch. The T lookaheads are one ``vmap``. With ``sgd_lr`` the lookahead
  is TAG's plain step θ^sh − sgd_lr·∇L_i instead (an optimiser with momentum, e.g. Adam,
  mostly replays its momentum, which is the same for every i and blurs Z).

  Returns:
    ``(z [T, T], cos [T, T])`` with ``z[i, j] = 1 − L_j(θ^sh_{+i}, θ^j) / L_j(θ^sh, θ^j)``
    and ``cos[i, j]`` the cosine of the two tasks' gradients of θ^sh.
  """
  losses, g_sh, _ = per_task_grads(obj, params, batch)
  zero_tasks = jax.tree.map(jnp.zeros_like, params["tasks"])
  task_k = jax.tree.map(lambda p: p[batch.task], params["tasks"])

  def after_step(g_i):
    if sgd_lr is not None:
      shared = jax.tree.map(lambda p, g: p - sgd_lr * g, params["shared"], g_i)
    else:
      updates, _ = optimizer.update({"shared": g_i, "tasks": zero_tasks}, opt_state, params)
      shared = optax.apply_updates(params["shared"], updates["shared"])
    return sampled_losses(obj, shared, task_k, batch)

  ahead = jax.vmap(after_step)(g_sh)  # [T (stepped task i), T (measured task j)]
  z = 1.0 - ahead / losses[None]
  flat = jnp.concatenate(
    [x.reshape(x.shape[0], -1).astype(jnp.float32) for x in jax.tree.leaves(g_sh)], 1
  )
  unit = flat / jnp.maximum(jnp.linalg.norm(flat, axis=1, keepdims=True), 1e-12)
  return z, unit @ unit.T


def affinity_step(
  state: AffinityState,
  *,
  train_step,
  obj: Objective,
  optimizer: optax.GradientTransformation,
  data: DeviceData,
  batch_size: int,
  every: int,
  sgd_lr: float | None = None,
):
  """``train_step`` unchanged, plus the affinity on its own batch every ``every`` steps.

  The batch is drawn exactly as :func:`mtl_jax.train.train_step` draws it (all T tasks).
  """
  ts = state.train
  t = data.n_train.shape[0]

  def measure(sums):
    k_batch, _ = jax.random.split(jax.random.fold_in(ts.rng, ts.step))
    batch = sample_batch(k_batch, data, t, batch_size, obj.shared_inputs)
    z, cos = lookahead_affinity(obj, optimizer, ts.params, ts.opt_state, batch, sgd_lr)
    return sums[0] + z, sums[1] + cos, sums[2] + 1

  sums = (state.z_sum, state.cos_sum, state.count)
  z_sum, cos_sum, count = jax.lax.cond(ts.step % every == 0, measure, lambda s: s, sums)
  new, metrics = train_step(ts)
  return AffinityState(new, z_sum, cos_sum, count), metrics


def make_affinity_step(run, every: int, sgd_lr: float | None = None):
  """``(step, state)``: :func:`affinity_step` bound for a built run, and its first state."""
  t = run.taskset.num_tasks
  obj = Objective(run.model, run.data.kind, run.data.out_mask, run.taskset.shared_inputs)
  step = functools.partial(
    affinity_step,
    train_step=run.train_step,
    obj=obj,
    optimizer=build_optimizer(run.config),
    data=run.data,
    batch_size=run.config.batch_size,
    every=every,
    sgd_lr=sgd_lr,
  )
  zeros = (jnp.zeros((t, t)), jnp.zeros((t, t)), jnp.zeros((), jnp.int32))
  return step, AffinityState(run.state, *zeros)


def _check_all_tasks(config: ml_collections.ConfigDict, t: int) -> None:
  k = config.get("tasks_per_batch", 0)
  if k not in (0, t):
    raise ValueError(
      f"affinity needs every task every step: tasks_per_batch must be 0 or T={t}, got {k}"
    )


def affinity_run(
  config: ml_collections.ConfigDict,
  taskset: TaskSet,
  every: int = 10,
  lookahead: str = "optimizer",
  lookahead_lr: float = 0.1,
  log_path: str | None = None,
  progress: bool = False,
) -> dict:
  """Trains all tasks together (``config``) and measures the affinities every ``every`` steps.

  ``lookahead``: ``"optimizer"`` (the run's own optax update from its current state) or
  ``"sgd"`` (TAG's θ^sh − ``lookahead_lr``·∇L_i).

  Returns:
    :func:`mtl_jax.loop.train_run`'s result (test metrics of the all-task network) plus
    ``affinity`` (lookahead Z averaged over the measured steps), ``cosine`` (the same for
    the gradient cosine similarity) and ``measured_steps``.
  """
  t = taskset.num_tasks
  _check_all_tasks(config, t)
  if int(every) != every or every < 1:
    raise ValueError(f"affinity_every must be an integer >= 1, got {every}")
  if lookahead not in ("optimizer", "sgd"):
    raise ValueError(f"unknown lookahead {lookahead!r}; valid: optimizer, sgd")
  run = prepare_run(config, taskset)
  sgd_lr = float(lookahead_lr) if lookahead == "sgd" else None
  step, state = make_affinity_step(run, int(every), sgd_lr)
  result = loop.train_run(
    dataclasses.replace(run, state=state, train_step=step), log_path, progress, "affinity"
  )
  acc = jax.device_get(result["state"])
  n = max(int(acc.count), 1)
  result["affinity"] = np.asarray(acc.z_sum, np.float64) / n
  result["cosine"] = np.asarray(acc.cos_sum, np.float64) / n
  result["measured_steps"] = int(acc.count)
  result["state"] = acc.train
  return result


# ----------------------------------------------------------------------------- procedure


def subset_taskset(taskset: TaskSet, indices: Sequence[int]) -> TaskSet:
  """The tasks ``indices`` of ``taskset`` (in that order) as a task set of their own."""
  idx = np.asarray(list(indices), np.int64)
  t = taskset.num_tasks
  if idx.size == 0 or idx.min() < 0 or idx.max() >= t or len(set(idx.tolist())) != idx.size:
    raise ValueError(f"task indices must be distinct, in [0, {t}), got {list(indices)}")

  def pick(x):
    return None if x is None else np.asarray(x)[idx]

  return dataclasses.replace(
    taskset,
    name=f"{taskset.name}[{','.join(map(str, idx.tolist()))}]",
    specs=tuple(taskset.specs[i] for i in idx),
    **{
      f: pick(getattr(taskset, f))
      for f in ("x_train", "y_train", "n_train", "x_test", "y_test", "n_test")
      + ("descriptors", "label_mean", "label_std")
    },
  )


def partitions(items: Sequence[int], num_blocks: int) -> list[list[tuple[int, ...]]]:
  """Every partition of ``items`` into exactly ``num_blocks`` non-empty blocks (sorted)."""
  items = list(items)
  if not items:
    return [[]] if num_blocks == 0 else []
  first, rest = items[0], items[1:]
  out = []
  for p in partitions(rest, num_blocks - 1):  # ``first`` alone
    out.append(sorted([(first,)] + p))
  for p in partitions(rest, num_blocks):  # ``first`` joins a block
    for b in range(len(p)):
      out.append(sorted(p[:b] + [tuple(sorted((first,) + p[b]))] + p[b + 1 :]))
  return sorted(out)


def _group_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict(config.to_dict())
  config.baseline = ""
  config.tasks_per_batch = 0
  config.checkpoint_every = 0
  if "num_seeds" in config:  # one run per network here (the affinity carry is per run)
    config.num_seeds = 1
  return config


class _Trainer:
  """Trains one network per task group (each group once) and keeps its test metrics."""

  def __init__(self, config, taskset: TaskSet, progress: bool):
    self.config, self.taskset, self.progress = _group_config(config), taskset, progress
    self.metrics: dict[tuple[int, ...], dict] = {}

  def __call__(self, group: tuple[int, ...]) -> dict:
    group = tuple(sorted(group))
    if group not in self.metrics:
      sub = subset_taskset(self.taskset, group)
      run = prepare_run(self.config, sub)
      desc = "group " + ",".join(map(str, group))
      self.metrics[group] = loop.train_run(run, progress=self.progress, desc=desc)["tasks"]
    return self.metrics[group]

  def served(self, serving: Sequence[tuple[int, ...]]) -> dict:
    """Per-task test metrics, each task's from the network of the group serving it."""
    names = self.taskset.names
    return {names[i]: self(g)[names[i]] for i, g in enumerate(serving)}


def planted_ari(serving: Sequence[tuple[int, ...]], clusters: int) -> float:
  """Adjusted Rand index between planted clusters (task i in ``i % clusters``, as
  :func:`mtl_jax.data.synthetic.mmoe_regression` plants them) and the serving groups."""
  from sklearn.metrics import adjusted_rand_score  # noqa: PLC0415 (only here)

  groups = sorted(set(serving))
  return float(
    adjusted_rand_score(
      [i % clusters for i in range(len(serving))], [groups.index(g) for g in serving]
    )
  )


def _exhaustive(trainer: _Trainer, k: int, single: dict) -> dict:
  """Trains every partition into k blocks; the best by Δm% against every task alone."""
  taskset, best = trainer.taskset, None
  for blocks in partitions(range(taskset.num_tasks), k):
    serving = [next(b for b in blocks if i in b) for i in range(taskset.num_tasks)]
    dm = metrics_lib.delta_m(taskset, trainer.served(serving), single)[0]
    if best is None or dm > best["delta_m"] + 1e-12:
      best = {"groups": [list(b) for b in blocks], "delta_m": dm, "serving": serving}
  best["num_partitions"] = len(partitions(range(taskset.num_tasks), k))
  best["tasks"] = trainer.served(best.pop("serving"))
  return best


def write_affinity(workdir: str, matrix: np.ndarray, names: Sequence[str], estimator: str):
  """``affinity.json`` (matrix, task names, estimator) and ``affinity.png`` (heatmap)."""
  import matplotlib  # noqa: PLC0415 (plotting only here)

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415

  doc = {
    "estimator": estimator,
    "tasks": list(names),
    "index": "affinity[i][j] = effect of task i's step on task j's loss",
    "affinity": np.asarray(matrix).tolist(),
  }
  _write_json(os.path.join(workdir, "affinity.json"), doc)
  t = len(names)
  fig, ax = plt.subplots(figsize=(1.0 + 0.5 * t, 0.8 + 0.5 * t))
  off = np.asarray(matrix)[~np.eye(t, dtype=bool)]
  lim = float(np.abs(off).max()) if off.size else 1.0
  im = ax.imshow(matrix, cmap="RdBu", vmin=-lim, vmax=lim)
  ax.set_xticks(range(t), names, rotation=90)
  ax.set_yticks(range(t), names)
  ax.set_xlabel("task j (loss measured)")
  ax.set_ylabel("task i (step taken)")
  ax.set_title(f"inter-task affinity ({estimator})")
  fig.colorbar(im, ax=ax)
  fig.tight_layout()
  fig.savefig(os.path.join(workdir, "affinity.png"), dpi=100)
  plt.close(fig)


def _write_json(path: str, doc: Any) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(doc, f, indent=2)
  os.replace(tmp, path)


def report_table(taskset: TaskSet, results: dict) -> str:
  """Markdown: each task's primary test metric under every training option, and Δm%."""
  options = [k for k in ("all", "alone", "tag", "exhaustive") if k in results["options"]]
  head = "| task | metric | " + " | ".join(options) + " |"
  lines = [head, "|" + "---|" * (len(options) + 2)]
  for spec in taskset.specs:
    m = spec.primary_metric
    vals = [f"{results['options'][o]['tasks'][spec.name][m]:.4f}" for o in options]
    lines.append(f"| {spec.name} | {m} | " + " | ".join(vals) + " |")
  dms = [f"{results['options'][o]['delta_m']:+.2f}" for o in options]
  lines.append("| Δm% vs alone | | " + " | ".join(dms) + " |")
  return "\n".join(lines)


def _settings(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  g = config.get("grouping") or ml_collections.ConfigDict()
  if g.get("estimator", "lookahead") not in ESTIMATORS:
    raise ValueError(f"unknown grouping.estimator {g.estimator!r}; valid: {', '.join(ESTIMATORS)}")
  if not 1 <= g.get("num_groups", 2) <= g.get("max_groups", 3):
    raise ValueError("need 1 <= grouping.num_groups <= grouping.max_groups")
  return g


def run_procedure(config: ml_collections.ConfigDict, workdir: str, progress: bool = False) -> dict:
  """TAG end to end: affinities, groups for k = 1..K, one network per group, the report.

  Every k's groups are trained (``tag_by_k``); ``num_groups`` is the k compared in detail
  with all tasks together, every task alone and (small T) every partition into k blocks.

  ``config.grouping`` holds ``affinity_every``, ``estimator`` (lookahead | cosine),
  ``lookahead`` (optimizer | sgd), ``lookahead_lr``, ``max_groups`` (K), ``num_groups``
  (the k that is trained), ``method`` (auto | exact | beam), ``exhaustive_max_tasks`` and
  ``planted_clusters`` (> 1: report the adjusted Rand index against them).
  Writes ``affinity.json``, ``affinity.png``, ``results.json`` and ``report.md``.
  """
  from mtl_jax.build import build_taskset  # noqa: PLC0415
  from mtl_jax.validation import validate_config  # noqa: PLC0415

  g = _settings(config)
  taskset = build_taskset(config)
  t, names = taskset.num_tasks, taskset.names
  validate_config(_group_config(config), taskset)
  _check_all_tasks(config, t)
  os.makedirs(workdir, exist_ok=True)
  aff = affinity_run(
    _group_config(config),
    taskset,
    g.get("affinity_every", 10),
    g.get("lookahead", "optimizer"),
    g.get("lookahead_lr", 0.1),
    progress=progress,
  )
  estimator = g.get("estimator", "lookahead")
  matrix = aff["affinity" if estimator == "lookahead" else "cosine"]
  write_affinity(workdir, matrix, names, estimator)
  method, k = g.get("method", "auto"), g.get("num_groups", 2)
  selections = {n: select_groups(matrix, n, method) for n in range(1, g.get("max_groups", 3) + 1)}
  serving = serving_groups(matrix, selections[k])
  trainer = _Trainer(config, taskset, progress)
  trainer.metrics[tuple(range(t))] = aff["tasks"]
  single = {names[i]: trainer((i,))[names[i]] for i in range(t)}
  options = {
    "all": {"groups": [list(range(t))], "tasks": aff["tasks"]},
    "alone": {"groups": [[i] for i in range(t)], "tasks": single},
    "tag": {"groups": [list(x) for x in selections[k]], "tasks": trainer.served(serving)},
  }
  if t <= g.get("exhaustive_max_tasks", 6):
    options["exhaustive"] = _exhaustive(trainer, k, single)
  for opt in options.values():
    opt["delta_m"] = metrics_lib.delta_m(taskset, opt["tasks"], single)[0]
  by_k = {}  # every k's selection trained too (TAG's comparison across budgets)
  for n, sel in selections.items():
    tasks = trainer.served(serving_groups(matrix, sel))
    dm = metrics_lib.delta_m(taskset, tasks, single)[0]
    by_k[str(n)] = {"groups": [list(x) for x in sel], "tasks": tasks, "delta_m": dm}
  results = {
    "taskset": taskset.name,
    "tasks": names,
    "estimator": estimator,
    "affinity": np.asarray(matrix).tolist(),
    "measured_steps": aff["measured_steps"],
    "selections": {str(n): [list(x) for x in s] for n, s in selections.items()},
    "selection_scores": {str(n): grouping_score(matrix, s) for n, s in selections.items()},
    "num_groups": k,
    "serving": [list(x) for x in serving],
    "options": options,
    "tag_by_k": by_k,
    "networks_trained": len(trainer.metrics),
  }
  if g.get("planted_clusters", 0) > 1:
    results["planted_ari"] = planted_ari(serving, g.planted_clusters)
  _write_json(os.path.join(workdir, "results.json"), results)
  with open(os.path.join(workdir, "report.md"), "w") as f:
    f.write(_report(taskset, results))
  return results


def _report(taskset: TaskSet, results: dict) -> str:
  sel = results["selections"][str(results["num_groups"])]
  by_k = ", ".join(f"k={n}: {v['delta_m']:+.2f}" for n, v in results["tag_by_k"].items())
  lines = [
    f"# Task grouping (TAG) on {taskset.name}",
    "",
    f"Affinity estimator: {results['estimator']} ({results['measured_steps']} measured steps).",
    f"Selected groups (k = {results['num_groups']}): {sel}",
    f"Δm% vs alone of the TAG grouping for every k: {by_k}",
  ]
  if "planted_ari" in results:
    lines.append(f"Adjusted Rand index against the planted clusters: {results['planted_ari']:.3f}")
  if "exhaustive" in results["options"]:
    ex = results["options"]["exhaustive"]
    lines.append(f"Best of {ex['num_partitions']} partitions (trained): {ex['groups']}")
  return "\n".join(lines + ["", report_table(taskset, results), ""])
