"""The training loop of one run: chunks of steps, logging, checkpoints, the non-finite guard.

:func:`train_run` trains a :class:`~mtl_jax.build.Run` from its start step to
``config.num_steps`` in chunks of ``config.log_every`` steps (each one jitted
``lax.scan``); between chunks the host logs one ``metrics.jsonl`` record and checkpoints
at the first chunk end at or after every multiple of ``config.checkpoint_every`` (and at
the end). A NaN/Inf loss or update stops it with :class:`NonFiniteError`, naming the
task(s) and the exact step, before anything from the bad chunk is logged or saved.
"""

import functools
import math
import time
from collections.abc import Callable

import jax
import numpy as np
import tqdm
from absl import logging

from mtl_jax import metrics as metrics_lib
from mtl_jax import models, sharding
from mtl_jax.build import Run
from mtl_jax.tasks import TaskSet
from mtl_jax.train import make_chunk
from mtl_jax.writers import MetricsLog


class NonFiniteError(FloatingPointError):
  """A task loss or the update became NaN/Inf; the message names the task(s) and step."""


def nonfinite_message(run: Run, m: dict, desc: str, first: int, last: int) -> str:
  """What went non-finite (which tasks, which step), what was kept, what to try."""
  names = run.taskset.names
  bad = [name for name, b in zip(names, np.asarray(m["nonfinite_tasks"])) if b]
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
    f"{desc or 'training'}: non-finite values at step {int(m['nonfinite_step'])}: {what}. "
    f"Nothing from steps {first}..{last} was logged or saved; the latest checkpoint is "
    + (f"step {saved}" if saved is not None else "none")
    + ". Try a lower learning_rate or clip_norm > 0"
    + (", and check these tasks' data." if bad else ".")
  )


def chunk_record(taskset: TaskSet, m: dict, step: int, elapsed: float) -> dict:
  """The ``metrics.jsonl`` record of one chunk's (host) metrics."""
  count = np.asarray(m["loss_count"])
  per_task = np.where(count > 0, np.asarray(m["loss_sum"]) / np.maximum(count, 1), np.nan)
  return {
    "step": step,
    "loss": float(m["loss"]),
    "losses": {
      name: (None if math.isnan(v) else float(v)) for name, v in zip(taskset.names, per_task)
    },
    "grad_norm": float(m["grad_norm"]),
    "update_norm": float(m["update_norm"]),
    "param_norm": float(m["param_norm"]),
    "elapsed_s": round(elapsed, 3),
  }


def _runner(run: Run, n: int, cache: dict) -> Callable:
  if n not in cache:
    fn = make_chunk(run.train_step, n)
    cache[n] = fn if run.mesh is None else sharding.jit_sharded(fn, run.state_shardings, run.mesh)
  return cache[n]


def _train_chunks(run: Run, log: MetricsLog, bar, desc: str, t0: float):
  config, state = run.config, run.state
  chunk, every = min(config.log_every, config.num_steps), config.get("checkpoint_every", 0)
  steps_done = last_saved = run.start_step
  cache = {}
  while steps_done < config.num_steps:
    n = min(chunk, config.num_steps - steps_done)
    new_state, m = _runner(run, n, cache)(state)
    m = jax.device_get(m)
    if int(m["nonfinite_step"]) >= 0:
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
  test = evaluate_fn(run.model, run.mesh)(state.params, run.data) if evaluate else None
  counts = {
    "shared": models.count_params(state.params["shared"]),
    "task_specific": models.count_params(state.params["tasks"]),
  }
  counts["total"] = counts["shared"] + counts["task_specific"]
  return {
    "tasks": metrics_lib.metrics_by_task(run.taskset, jax.device_get(test)) if evaluate else {},
    "params": counts,
    "train_time_s": round(time.time() - t0, 2),
    "state": state,
  }


def evaluate_fn(model, mesh) -> Callable:
  """Jitted test-split evaluation ``(params, data) -> per-task metric arrays``."""
  fn = functools.partial(metrics_lib.evaluate, model, split="test")
  if mesh is None:
    return jax.jit(fn)
  return jax.jit(fn, out_shardings=sharding.replicated(mesh))
