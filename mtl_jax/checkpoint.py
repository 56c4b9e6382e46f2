"""Checkpoints of the whole ``TrainState`` with orbax, and safe automatic resume.

A run directory ``D`` (the workdir, or ``workdir/baseline``) keeps its checkpoints in
``D/checkpoints/<step>/`` through an orbax ``CheckpointManager`` (``MAX_TO_KEEP`` newest).
Each holds two items: ``state`` (step, params, optimizer state, method state, RNG — the
whole ``TrainState``) and ``config`` (the resolved config as JSON). Orbax writes each step
into a temporary directory and renames it when complete, so a process killed mid-save
leaves the previous checkpoint as the latest one.

Resume refuses, with a message saying what differs and what to do, when the saved config
differs in anything but :data:`RESUMABLE_FIELDS`, when array shapes/dtypes differ (e.g.
the model code changed), or when the files cannot be read. It never silently starts over.
"""

import json
import os
from typing import Any

import jax
import orbax.checkpoint as ocp

MAX_TO_KEEP = 2
# Fields that may change between a run and its resume without changing what is trained.
# (num_steps only with a constant schedule: a cosine schedule's shape depends on it.)
# The data path trains on the same batches either way, so it may change too.
RESUMABLE_FIELDS = (
  "num_steps",
  "checkpoint_every",
  "log_every",
  "mesh",
  "distributed",
  "data_path",
  "device_data_budget_mb",
)


class CheckpointError(ValueError):
  """A checkpoint that cannot be resumed (corrupt, or from a different model/config)."""


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
  if isinstance(d, dict):
    out = {}
    for k, v in d.items():
      out.update(_flat(v, f"{prefix}{k}."))
    return out
  return {prefix[:-1]: d}


def config_differences(saved: dict, current: dict) -> list[str]:
  """``"field: saved -> current"`` for every field that makes a resume unsafe."""
  a, b = _flat(saved), _flat(json.loads(json.dumps(current)))
  allowed = set(RESUMABLE_FIELDS)
  if b.get("schedule", "constant") != "constant":
    allowed.discard("num_steps")
  diffs = []
  for key in sorted(set(a) | set(b)):
    if key.split(".")[0] in allowed:
      continue
    if a.get(key, "<absent>") != b.get(key, "<absent>"):
      diffs.append(f"{key}: {a.get(key, '<absent>')!r} -> {b.get(key, '<absent>')!r}")
  return diffs


def _key_name(path) -> str:
  return jax.tree_util.keystr(path, simple=True, separator="/")


class Checkpointer:
  """Saves and restores one run's ``TrainState``; creates nothing until the first save.

  Args:
    directory: the checkpoint directory (``run_dir/checkpoints``).
    max_to_keep: how many of the newest checkpoints to keep.
  """

  def __init__(self, directory: str, max_to_keep: int = MAX_TO_KEEP):
    self.directory = os.path.abspath(directory)
    self.max_to_keep = max_to_keep
    self._mngr = self._manager(create=False) if os.path.isdir(self.directory) else None
    self._writing = False  # a manager opened for saving (unfinished saves cleaned up)

  def _manager(self, create: bool) -> ocp.CheckpointManager:
    # Naming the handlers lets a fresh process read metadata before any restore call.
    return ocp.CheckpointManager(
      self.directory,
      options=ocp.CheckpointManagerOptions(
        max_to_keep=self.max_to_keep, create=create, cleanup_tmp_directories=create
      ),
      item_handlers={
        "state": ocp.StandardCheckpointHandler(),
        "config": ocp.JsonCheckpointHandler(),
      },
    )

  def latest_step(self) -> int | None:
    return None if self._mngr is None else self._mngr.latest_step()

  def all_steps(self) -> list[int]:
    return [] if self._mngr is None else list(self._mngr.all_steps())

  def _fail(self, step: int, what: str) -> CheckpointError:
    older = [s for s in self.all_steps() if s < step]
    fallback = (
      f"delete {os.path.join(self.directory, str(step))} to resume from step {older[-1]}, "
      if older
      else ""
    )
    return CheckpointError(
      f"cannot resume from checkpoint {os.path.join(self.directory, str(step))}: {what}. "
      f"To continue: {fallback}delete {self.directory} (and the run's metrics.jsonl) to "
      "start this run over, or pass a fresh --workdir."
    )

  def restore(self, target: Any, config: dict) -> Any:
    """Restores the latest checkpoint into the structure, shapes and shardings of ``target``.

    Args:
      target: a freshly initialised state (only its structure/shapes/shardings are used).
      config: the current config dict, compared with the one saved in the checkpoint.

    Returns:
      The restored state, or ``None`` when there is no checkpoint.

    Raises:
      CheckpointError: the checkpoint is corrupt or incompatible (the message says how).
    """
    try:
      return self._restore(target, config)
    except CheckpointError:
      self.close()  # release orbax's threads now, not at garbage collection
      raise

  def _restore(self, target: Any, config: dict) -> Any:
    step = self.latest_step()
    if step is None:
      return None
    saved_config = self._read(
      step,
      "config",
      lambda: (
        self._mngr.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore())).config
      ),
    )
    diffs = config_differences(saved_config or {}, config)
    if diffs:
      raise self._fail(
        step,
        "it was written with a different config ("
        + "; ".join(diffs[:8])
        + (" ..." if len(diffs) > 8 else "")
        + ")",
      )
    abstract = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), target
    )
    meta = self._read(step, "array metadata", lambda: self._mngr.item_metadata(step)["state"])
    saved = {
      _key_name(p): m
      for p, m in jax.tree_util.tree_flatten_with_path(getattr(meta, "tree", meta))[0]
      if hasattr(m, "shape")
    }
    want = {_key_name(p): x for p, x in jax.tree_util.tree_flatten_with_path(abstract)[0]}
    problems = [f"{k} missing" for k in want if k not in saved]
    problems += [f"{k} unexpected" for k in saved if k not in want]
    problems += [
      f"{k}: saved {tuple(saved[k].shape)} {saved[k].dtype}, model needs {tuple(x.shape)} {x.dtype}"
      for k, x in want.items()
      if k in saved and (tuple(saved[k].shape) != tuple(x.shape) or saved[k].dtype != x.dtype)
    ]
    if problems:
      raise self._fail(
        step,
        "its arrays do not fit this model ("
        + "; ".join(problems[:6])
        + (" ..." if len(problems) > 6 else "")
        + ")",
      )

    def load():
      restored = self._mngr.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
      ).state
      return jax.block_until_ready(
        {_key_name(p): x for p, x in jax.tree_util.tree_flatten_with_path(restored)[0]}
      )

    got = self._read(step, "arrays", load)
    # Orbax may hand back containers of its own choosing: rebuild the target's structure
    # (NamedTuples, tuples) by matching leaves by their key path, never by position.
    paths, treedef = jax.tree_util.tree_flatten_with_path(target)
    missing = [_key_name(p) for p, _ in paths if _key_name(p) not in got]
    if missing:
      raise self._fail(step, f"it lacks arrays the model needs: {', '.join(missing[:6])}")
    return jax.tree.unflatten(treedef, [got[_key_name(p)] for p, _ in paths])

  def read_latest(self) -> tuple[int, Any, dict] | None:
    """The latest checkpoint as it was saved, without a target to restore into.

    For reading a run's parameters without rebuilding its model or data (e.g. the source
    of a fine-tuning run, :mod:`mtl_jax.transfer`).

    Returns:
      ``(step, state, config)``: the ``TrainState`` as nested dicts of arrays (``state["params"]``
      is θ) and the saved config dict; ``None`` when there is no checkpoint.

    Raises:
      CheckpointError: the files cannot be read.
    """
    step = self.latest_step()
    if step is None:
      return None
    args = lambda **kw: ocp.args.Composite(**kw)
    config = self._read(
      step,
      "config",
      lambda: self._mngr.restore(step, args=args(config=ocp.args.JsonRestore())).config,
    )
    state = self._read(
      step,
      "arrays",
      lambda: self._mngr.restore(step, args=args(state=ocp.args.StandardRestore())).state,
    )
    return step, state, config

  def _read(self, step: int, what: str, fn):
    """``fn()``, turning any read failure into a :class:`CheckpointError`."""
    error = None
    try:
      return fn()
    except Exception as e:  # any read failure means the same to the user
      error = f"its {what} cannot be read, the files are probably corrupt ({type(e).__name__}: {e})"
    # Raised outside the handler so orbax's failed objects are not kept alive by the
    # exception chain (they would otherwise complain about a closed event loop later).
    raise self._fail(step, error)

  def save(self, step: int, state: Any, config: dict):
    """Saves asynchronously (the device→host copy happens before this returns)."""
    if not self._writing:
      # Reopened for writing: orbax then removes unfinished saves (``N.orbax-checkpoint-tmp``
      # of a process killed mid-save). Reading alone never deletes anything.
      if self._mngr is not None:
        self._mngr.close()
      self._mngr, self._writing = self._manager(create=True), True
    self._mngr.save(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(json.loads(json.dumps(config)))
      ),
      force=True,
    )

  def wait(self):
    """Blocks until pending saves are on disk."""
    if self._mngr is not None:
      self._mngr.wait_until_finished()

  def close(self):
    if self._mngr is not None:
      self._mngr.wait_until_finished()
      self._mngr.close()
      self._mngr, self._writing = None, False
