"""The training loop of one run: chunks of steps, logging, checkpoints, the non-finite guard.

:func:`train_run` trains a :class:`~mtl_jax.build.Run` from its start step to
``config.num_steps`` in chunks of ``config.log_every`` steps (each one jitted
``lax.scan``); between chunks the host logs one ``metrics.jsonl`` record and checkpoints
at the first chunk end at or after every multiple of ``config.checkpoint_every`` (and at
the end). A NaN/Inf loss or update stops it with :class:`NonFiniteError`, naming the
task(s) and the exact step, before anything from the bad chunk is logged or saved.
"""

import contextlib
import functools
import math
import time
from collections.abc import Callable

import jax
import numpy as np
import tqdm
from absl import logging

from mtl_jax import build, models, sharding
from mtl_jax import metrics as metrics_lib
from mtl_jax.build import Run
from mtl_jax.data import streaming
from mtl_jax.tasks import TaskSet
from mtl_jax.train import make_chunk
from mtl_jax.writers import MetricsLog


class NonFiniteError(FloatingPointError):
  """A task loss or the update became NaN/Inf; the message names the task(s) and step."""


def nonfinite_message(run: Run, m: dict, desc: str, first: int, last: int) -> str:
  """What went non-finite (which seed, tasks and step), what was kept, what to try.

  ``m`` holds the chunk's metrics with a leading seed axis (length 1 for one seed).
  """
  steps = np.asarray(m["nonfinite_step"])
  s = int(np.argmin(np.where(steps >= 0, steps, np.iinfo(np.int64).max)))  # first to fail
  names = run.taskset.names
  bad = [name for name, b in zip(names, np.asarray(m["nonfinite_tasks"])[s]) if b]
  seed = f" (seed {run.config.seed + s}, run {s} of {run.num_seeds})" if run.num_seeds > 1 else ""
  if run.per_seed_data:  # seed s trained on its own task set
    seed = f"{seed[:-1]}, data seed {build.data_seed(run.config) + s})"
  what = (
    f"the loss of task(s) {', '.join(bad[:10])}"
    + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
    + " is NaN/Inf"
    if bad
    else "the update (weighted loss, gradient or optimizer step) is NaN/Inf "
    "while every task loss was finite"
  )
  saved = run.ckpt.latest_step() if run.ckpt is not None else None
  return (
    f"{desc or 'training'}: non-finite values at step {int(steps[s])}{seed}: {what}. "
    f"Nothing from steps {first}..{last} was logged or saved; the latest checkpoint is "
    + (f"step {saved}" if saved is not None else "none")
    + ". Try a lower learning_rate or clip_norm > 0"
    + (", and check these tasks' data." if bad else ".")
  )


def chunk_record(taskset: TaskSet, m: dict, step: int, elapsed: float) -> dict:
  """The ``metrics.jsonl`` record of one chunk's (host) metrics.

  ``m`` has a leading seed axis; losses and norms are means over seeds (with several
  seeds, ``loss_per_seed`` and ``losses_per_seed`` keep each run's own).
  """
  count = np.asarray(m["loss_count"])
  per_task_SxT = np.where(count > 0, np.asarray(m["loss_sum"]) / np.maximum(count, 1), np.nan)
  per_task = per_task_SxT.mean(0)
  opt = lambda v: None if math.isnan(v) else float(v)
  record = {
    "step": step,
    "loss": float(np.mean(m["loss"])),
    "losses": {name: opt(v) for name, v in zip(taskset.names, per_task)},
    "grad_norm": float(np.mean(m["grad_norm"])),
    "update_norm": float(np.mean(m["update_norm"])),
    "param_norm": float(np.mean(m["param_norm"])),
    "elapsed_s": round(elapsed, 3),
  }
  if per_task_SxT.shape[0] > 1:
    record["loss_per_seed"] = [float(v) for v in np.asarray(m["loss"])]
    record["losses_per_seed"] = {
      name: [opt(v) for v in per_task_SxT[:, i]] for i, name in enumerate(taskset.names)
    }
  return record


def _runner(run: Run, n: int, cache: dict, batches=None) -> Callable:
  """The chunk of ``n`` steps, ``(state, *args)``; args is ``(run.data,)`` with per-seed
  data, ``(batches,)`` (``n`` stacked, on the device) on the streaming path."""
  if n not in cache:
    fn = make_chunk(run.train_step, n, run.num_seeds, scan_batches=run.stream is not None)
    if run.mesh is not None:
      data_sh = None
      if run.stream is not None:
        data_sh = jax.tree.map(lambda x: x.sharding, batches)
      elif run.per_seed_data:
        data_sh = jax.tree.map(lambda x: x.sharding, run.data)
      fn = sharding.jit_sharded(fn, run.state_shardings, run.mesh, data_sh)
    cache[n] = fn
  return cache[n]


def _streamed_chunk(run: Run, state, n: int, feed, cache: dict):
  """``n`` steps on the streaming path: the feed's next pieces, their metrics merged."""
  ms, lengths = [], []
  while sum(lengths) < n:
    length, batches = next(feed)
    state, m = _runner(run, length, cache, batches)(state, batches)
    ms.append(m)
    lengths.append(length)
  return state, streaming.merge_pieces(jax.device_get(ms), lengths)


def _train_chunks(run: Run, log: MetricsLog, bar, desc: str, t0: float):
  config = run.config
  if run.stream is None:
    return _chunk_loop(run, log, bar, desc, t0, None)
  chunk = min(config.log_every, config.num_steps)
  pieces = run.stream.plan(run.start_step, config.num_steps, chunk)
  with contextlib.closing(run.stream.feed(run.state.rng, pieces)) as feed:
    return _chunk_loop(run, log, bar, desc, t0, feed)


def _chunk_loop(run: Run, log: MetricsLog, bar, desc: str, t0: float, feed):
  """The chunks, from the device (``feed`` None) or from the stream's ``feed``."""
  config, state, cache = run.config, run.state, {}
  args = (run.data,) if run.per_seed_data and feed is None else ()
  chunk, every = min(config.log_every, config.num_steps), config.get("checkpoint_every", 0)
  steps_done = last_saved = run.start_step
  while steps_done < config.num_steps:
    n = min(chunk, config.num_steps - steps_done)
    if feed is None:
      new_state, m = _runner(run, n, cache)(state, *args)
      m = jax.device_get(m)
    else:
      new_state, m = _streamed_chunk(run, state, n, feed, cache)
    if run.num_seeds == 1:  # one code path below: metrics with a leading seed axis
      m = jax.tree.map(lambda v: np.asarray(v)[None], m)
    if np.any(np.asarray(m["nonfinite_step"]) >= 0):
      if run.ckpt is not None:
        run.ckpt.wait()  # the last good checkpoint must be complete before we stop
      raise NonFiniteError(nonfinite_message(run, m, desc, steps_done + 1, steps_done + n))
    state, steps_done = new_state, steps_done + n
    record = chunk_record(run.taskset, m, steps_done, time.time() - t0)
    log.write(record)
    bar.update(n)
    bar.set_postfix(loss=f"{record['loss']:.4g}")
    if run.ckpt is not None and every and steps_done // every > last_saved // every:
      run.ckpt.save(steps_done, state, config.to_dict())
      last_saved = steps_done
  if run.ckpt is not None and steps_done != last_saved:
    run.ckpt.save(steps_done, state, config.to_dict())
  return state


def train_run(
  run: Run,
  log_path: str | None = None,
  progress: bool = True,
  desc: str = "",
  evaluate: bool = True,
) -> dict:
  """Trains ``run`` to ``config.num_steps`` (logging to ``log_path``); evaluates on test.

  Returns:
    ``{"tasks": per-task test metrics, "params": counts, "train_time_s", "state"}``
    (``"tasks"`` is ``{}`` with ``evaluate=False``).

  Raises:
    NonFiniteError: a task loss or the update became NaN/Inf (nothing of it is saved).
  """
  if run.start_step:
    logging.warning(
      "%s: resuming from checkpoint step %d (%s)", desc or "run", run.start_step, run.ckpt.directory
    )
  log = MetricsLog(log_path, run.start_step)
  t0 = time.time()
  total, start = run.config.num_steps, run.start_step
  bar = tqdm.tqdm(total=total, initial=start, desc=desc, disable=not progress, leave=False)
  try:
    state = _train_chunks(run, log, bar, desc, t0)
  finally:
    bar.close()
    log.close()
    if run.ckpt is not None:
      run.ckpt.close()
  per_seed = _evaluate_seeds(run, state) if evaluate else []
  one = state.params if run.num_seeds == 1 else jax.tree.map(lambda p: p[0], state.params)
  counts = {
    "shared": models.count_params(one["shared"]),
    "task_specific": models.count_params(one["tasks"]),
  }
  counts["total"] = counts["shared"] + counts["task_specific"]
  return {
    "tasks": mean_over_seeds(per_seed),
    "tasks_per_seed": per_seed,
    "params": counts,
    "train_time_s": round(time.time() - t0, 2),
    "state": state,
  }


def _evaluate_seeds(run: Run, state) -> list[dict]:
  """Per-seed ``{task: {metric: value}}`` on the test split (one entry per seed)."""
  if run.stream is not None:
    return [
      metrics_lib.metrics_by_task(run.taskset, m) for m in evaluate_streamed(run, state.params)
    ]
  fn = evaluate_fn(run.model, run.mesh, run.num_seeds, run.per_seed_data)
  test = jax.device_get(fn(state.params, run.data))
  if run.num_seeds == 1:
    return [metrics_lib.metrics_by_task(run.taskset, test)]
  return [
    metrics_lib.metrics_by_task(run.taskset, jax.tree.map(lambda v, s=s: v[s], test))
    for s in range(run.num_seeds)
  ]


def evaluate_streamed(run: Run, params, split: str = "test") -> list[dict]:
  """Per seed, the per-task metric arrays of a streaming run on ``split``, fed from the
  host in pieces (:func:`mtl_jax.data.streaming.evaluate_streamed`)."""
  put = (
    jax.device_put
    if run.mesh is None
    else functools.partial(sharding.put, shardings=sharding.replicated(run.mesh))
  )
  apply, out = streaming.outputs_fn(run.model), []  # one program for every seed
  for s, host in enumerate(run.stream.sources):
    p = params if run.num_seeds == 1 else jax.tree.map(lambda v, s=s: v[s], params)
    out.append(
      streaming.evaluate_streamed(run.model, p, host, run.stream.budget, put, split, apply)
    )
  return out


def mean_over_seeds(per_seed: list[dict]) -> dict:
  """``{task: {metric: mean over seeds}}`` ({} for no seeds)."""
  if not per_seed:
    return {}
  return {
    task: {k: float(np.mean([r[task][k] for r in per_seed])) for k in metrics}
    for task, metrics in per_seed[0].items()
  }


def evaluate_fn(model, mesh, num_seeds: int = 1, per_seed_data: bool = False) -> Callable:
  """Jitted test-split evaluation ``(params, data) -> per-task metric arrays``
  (with a leading seed axis on params and outputs when ``num_seeds > 1``, and on the data
  too with ``per_seed_data``: seed s is evaluated on its own test split)."""
  fn = functools.partial(metrics_lib.evaluate, model, split="test")
  if num_seeds > 1:
    fn = jax.vmap(fn, in_axes=(0, 0 if per_seed_data else None))
  if mesh is None:
    return jax.jit(fn)
  return jax.jit(fn, out_shardings=sharding.replicated(mesh))
