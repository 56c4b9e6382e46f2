"""The streaming data path: training batches fed from host memory, for data the device cannot hold.

When the padded train+test arrays of a run (every seed's, with ``resample_data``) exceed
``config.device_data_budget_mb`` (default :data:`DEFAULT_BUDGET_MB`), or when
``config.data_path = "stream"``, :func:`choose_path` picks this path (and logs which path it
chose, and why); ``"device"`` forces the on-device path whatever the size.

How the batches are made, and why they equal the on-device path's:

* The task and example ids of step s come from the step's own key, exactly as the on-device
  step draws them (:func:`mtl_jax.data.sampling.sample_ids` on ``split(fold_in(rng, s))[0]``):
  tasks uniform whatever their size, examples uniform over each task's own rows. They are
  tiny, so a chunk's ids are computed at once, by one jitted function on the host's CPU
  device (:func:`chunk_ids`); a resumed run continues from its step, so resume is exact.
* The rows are gathered from host arrays with numpy indexing (:func:`gather_host`). The
  sources are :class:`~mtl_jax.data.sampling.DeviceData` of numpy arrays; any array that
  supports numpy's advanced indexing serves (e.g. ``np.memmap`` for data larger than RAM).
  Every per-example field of :class:`~mtl_jax.data.sampling.TaskBatch` is gathered the
  same way from ``DeviceData.<field>_train``; with shared inputs (one p(x)) only one row of
  tasks' inputs ``[1, B, ...]`` is sent and broadcast to the K tasks on the device.
* A chunk's batches are stacked ``[L, K, B, ...]`` (``[S, L, ...]`` with S seeds), sent in
  pieces of at most ``budget / PIECE_FRACTION`` bytes, and the jitted ``lax.scan`` of the
  step runs over them (:func:`mtl_jax.train.make_chunk` with ``scan_batches``); so the
  parameters and metrics equal the on-device run's for the same seed.
* A background thread prepares the next :data:`PREFETCH` pieces (ids, gather, transfer)
  while the device trains on the current one. No data-loading library is used: the work per
  piece is one small jitted call and one vectorised numpy gather, and the batches must be
  the ones the step's key names, which a thread reproduces directly (grain's record
  pipelines, samplers and worker processes would add a dependency and a second sampler to
  keep equal to this one).

The test split is evaluated in host-fed pieces of rows (:func:`evaluate_streamed`): the
model's outputs are collected on the host and the metrics computed from them
(:func:`mtl_jax.metrics.metrics_from_outputs`).
"""

import collections
import concurrent.futures
import functools
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from mtl_jax.data.sampling import DeviceData, TaskBatch, batch_fields, sample_ids
from mtl_jax.metrics import metrics_from_outputs
from mtl_jax.tasks import TaskSet

PATHS = ("auto", "device", "stream")
DEFAULT_BUDGET_MB = 4096  # the padded train+test arrays the device may hold (MiB)
PIECE_FRACTION = 8  # one transfer of streamed batches (or test rows) is <= budget / 8
PREFETCH = 2  # pieces prepared ahead of the one the device trains on


def budget_bytes(config) -> int:
  """``config.device_data_budget_mb`` in bytes (:data:`DEFAULT_BUDGET_MB` when absent)."""
  return int(float(config.get("device_data_budget_mb", DEFAULT_BUDGET_MB)) * 2**20)


def padded_bytes(tasksets: list[TaskSet]) -> int:
  """Bytes of the padded arrays (train, test and per-task) the on-device path would hold."""
  return sum(
    np.asarray(v).nbytes for ts in tasksets for v in DeviceData.from_taskset(ts, np.asarray)
  )


def choose_path(config, tasksets: list[TaskSet]) -> str:
  """``"device"`` or ``"stream"``: ``config.data_path``, and with ``"auto"`` (the default)
  ``"stream"`` exactly when :func:`padded_bytes` exceeds :func:`budget_bytes`. Logs it."""
  path, size, budget = config.get("data_path", "auto"), padded_bytes(tasksets), budget_bytes(config)
  chosen = ("stream" if size > budget else "device") if path == "auto" else path
  log = logging.warning if chosen == "stream" else logging.info  # streaming: say so
  log(
    "data path: %s (padded train+test arrays %.4g MiB, device_data_budget_mb %.4g MiB, "
    "data_path %r)",
    chosen,
    size / 2**20,
    budget / 2**20,
    path,
  )
  return chosen


def row_free(host: DeviceData) -> DeviceData:
  """``host`` on the device with every per-example field cut to zero rows ``[T, 0, ...]``:
  what sizes a streamed step (shapes, loss kinds, counts) without its data."""
  cut = {f"{f}_{split}" for f in batch_fields() for split in ("train", "test")}
  return DeviceData(
    *(jnp.asarray(v[:, :0] if name in cut else v) for name, v in zip(DeviceData._fields, host))
  )


def _cpu():
  try:
    return jax.devices("cpu")[0]
  except RuntimeError:  # no CPU backend (e.g. JAX_PLATFORMS=cuda): the default device
    return None


@functools.partial(jax.jit, static_argnums=(3, 4, 5))
def _ids(rng, steps, n_train, k, batch_size, shared):
  def one(step):
    k_batch, _ = jax.random.split(jax.random.fold_in(rng, step))  # as train_step splits
    return sample_ids(k_batch, n_train, k, batch_size, shared)

  return jax.vmap(one)(steps)


def chunk_ids(
  rng, first: int, length: int, n_train, k: int, batch_size: int, shared: bool = False
) -> tuple[np.ndarray, np.ndarray]:
  """Task ids ``[L, K]`` and example ids ``[L, K, B]`` of steps ``first .. first+L-1`` of a
  run with base key ``rng`` (``TrainState.rng``), as its on-device steps would draw them."""
  steps = np.arange(first, first + length, dtype=np.int32)
  args = (np.asarray(rng), steps, np.asarray(n_train))
  cpu = _cpu()
  if cpu is not None:
    args = jax.device_put(args, cpu)
  task, idx = _ids(*args, k, batch_size, shared)
  return np.asarray(task), np.asarray(idx)


def gather_host(host: DeviceData, task: np.ndarray, idx: np.ndarray, shared: bool) -> TaskBatch:
  """The batches of ids ``task [..., K]``, ``idx [..., K, B]`` from host arrays (numpy).

  Every per-example field ``f`` comes from ``host.<f>_train``; with ``shared`` the inputs
  ``x`` keep only the first task's rows ``[..., 1, B, ...]`` (every task's are the same).
  """
  rows = {}
  for f in batch_fields():
    t, i = (task[..., :1], idx[..., :1, :]) if shared and f == "x" else (task, idx)
    rows[f] = np.asarray(getattr(host, f"{f}_train")[t[..., None], i])
  return TaskBatch(task=np.asarray(task, np.int32), **rows)


class Stream:
  """Feeds a run's training batches from host arrays, a background thread ahead.

  Args:
    sources: one host :class:`DeviceData` per seed (the same one for every seed unless
      each seed has its own data).
    tasks_per_batch, batch_size, shared_inputs: the step's K, B and p(x) sharing.
    budget: ``device_data_budget_mb`` in bytes (sizes the pieces).
    put: places a host :class:`TaskBatch` on the device(s) (e.g. sharded over a mesh).
  """

  def __init__(
    self,
    sources: list[DeviceData],
    tasks_per_batch: int,
    batch_size: int,
    shared_inputs: bool,
    budget: int,
    put: Callable[[TaskBatch], TaskBatch] = jax.device_put,
  ):
    self.sources, self.k, self.batch_size = sources, tasks_per_batch, batch_size
    self.shared, self.budget, self.put = shared_inputs, budget, put

  @property
  def num_seeds(self) -> int:
    return len(self.sources)

  def step_bytes(self) -> int:
    """Bytes of one step's batch (all seeds)."""
    host, out = self.sources[0], self.k * 4  # task ids
    for f in batch_fields():
      v = getattr(host, f"{f}_train")
      rows = 1 if self.shared and f == "x" else self.k
      out += rows * self.batch_size * v.dtype.itemsize * int(np.prod(v.shape[2:]))
    return out * self.num_seeds

  def max_steps(self) -> int:
    """Steps per piece: the most whose batches fit ``budget / PIECE_FRACTION`` (at least 1)."""
    return max(1, self.budget // PIECE_FRACTION // self.step_bytes())

  def plan(self, start: int, stop: int, chunk: int) -> list[tuple[int, int]]:
    """``(first step, length)`` of every piece from ``start`` to ``stop``; pieces never
    cross a multiple of ``chunk`` steps past ``start`` (the loop's logging chunks)."""
    out, size = [], self.max_steps()
    for c in range(start, stop, chunk):
      end = min(c + chunk, stop)
      out += [(s, min(size, end - s)) for s in range(c, end, size)]
    return out

  def batches(self, rng, first: int, length: int) -> TaskBatch:
    """Host batches of steps ``first ..``: ``[L, K, B, ...]`` (``[S, L, ...]`` with S seeds,
    ``rng`` then ``[S, ...]``: seed s's base key)."""
    rngs = [rng] if self.num_seeds == 1 else list(rng)
    out = []
    for key, host in zip(rngs, self.sources):
      ids = chunk_ids(key, first, length, host.n_train, self.k, self.batch_size, self.shared)
      out.append(gather_host(host, *ids, self.shared))
    return out[0] if self.num_seeds == 1 else jax.tree.map(lambda *v: np.stack(v), *out)

  def _piece(self, rng, first: int, length: int) -> tuple[int, TaskBatch]:
    return length, jax.block_until_ready(self.put(self.batches(rng, first, length)))

  def feed(self, rng, pieces: list[tuple[int, int]]) -> Iterator[tuple[int, TaskBatch]]:
    """``(length, device batches)`` of each piece in order, :data:`PREFETCH` prepared ahead
    on a background thread (``rng``, the base key, is read now). Close the generator to
    stop it early."""
    return self._feed(np.asarray(jax.device_get(rng)), pieces)

  def _feed(self, rng: np.ndarray, pieces: list[tuple[int, int]]):
    todo = iter(pieces)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mtl_stream") as pool:
      ahead = collections.deque()
      try:
        for _ in range(PREFETCH):
          if (p := next(todo, None)) is not None:
            ahead.append(pool.submit(self._piece, rng, *p))
        while ahead:
          piece = ahead.popleft().result()
          if (p := next(todo, None)) is not None:
            ahead.append(pool.submit(self._piece, rng, *p))
          yield piece
      finally:
        for f in ahead:
          f.cancel()


def merge_pieces(ms: list[dict], lengths: list[int]) -> dict:
  """One chunk's metrics from its pieces' (host arrays, as :func:`mtl_jax.train.make_chunk`
  returns them): sums add up, means are weighted by length, the first non-finite step wins."""
  if len(ms) == 1:
    return ms[0]
  w = np.asarray(lengths, np.float64) / sum(lengths)
  out = {}
  for key in ms[0]:
    v = np.stack([np.asarray(m[key]) for m in ms])
    if key in ("loss_sum", "loss_count", "weight_sum"):
      out[key] = v.sum(0)
    elif key not in ("nonfinite_step", "nonfinite_tasks"):
      out[key] = np.tensordot(w, v, 1).astype(v.dtype)
  steps = np.stack([np.asarray(m["nonfinite_step"]) for m in ms])  # [P] or [P, S]
  first = np.argmax(steps >= 0, axis=0)  # the first bad piece (0 when none)
  out["nonfinite_step"] = np.take_along_axis(steps, first[None], 0)[0]
  tasks = np.stack([np.asarray(m["nonfinite_tasks"]) for m in ms])  # [P, (S,) T]
  out["nonfinite_tasks"] = np.take_along_axis(tasks, first[None, ..., None], 0)[0]
  return out


_metrics_from_outputs = jax.jit(metrics_from_outputs, static_argnums=2)


def outputs_fn(model) -> Callable:
  """Jitted ``(params, x [T, n, ...]) -> outputs [T, n, O]`` of every task's own rows
  (build it once per run: each call of this function is a new program to compile)."""
  return jax.jit(lambda p, x: model.apply(p, x, jnp.arange(x.shape[0])))


def evaluate_streamed(
  model,
  params,
  host: DeviceData,
  budget: int,
  put: Callable = jax.device_put,
  split="test",
  apply: Callable | None = None,
) -> dict[str, np.ndarray]:
  """Per-task metrics ``[T]`` on ``host``'s ``split`` without holding it on the device.

  The inputs go over in pieces of rows (every task's, at most ``budget / PIECE_FRACTION``
  bytes), the outputs ``[T, N, O]`` are collected on the host and the metrics computed from
  them: the numbers of :func:`mtl_jax.metrics.evaluate` on the whole split (to float
  rounding). ``apply`` is :func:`outputs_fn` of ``model`` (pass one built once when
  evaluating several seeds or splits; ``None`` builds it).
  """
  x = getattr(host, f"x_{split}")
  t, n = x.shape[:2]
  rows = int(max(1, min(n, budget // PIECE_FRACTION // max(1, t * x[0, :1].nbytes))))
  apply = outputs_fn(model) if apply is None else apply
  out = np.concatenate(
    [np.asarray(jax.device_get(apply(params, put(x[:, r : r + rows])))) for r in range(0, n, rows)],
    axis=1,
  )
  other = "test" if split == "train" else "train"
  cut = {f"{f}_{other}": getattr(host, f"{f}_{other}")[:, :0] for f in batch_fields()}
  labels = host._replace(**cut, **{f"x_{split}": x[:, :0]})  # no inputs go over again
  return jax.device_get(_metrics_from_outputs(out, labels, split))
