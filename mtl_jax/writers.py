"""What a run writes into its workdir, and the checks that come before any writing.

``config.json`` and ``summary.json`` are written atomically (a temporary file, then
``os.replace``); ``metrics.jsonl`` gets one JSON object per logged chunk and, on resume,
keeps only the lines up to the restored step. Multi-host: process 0 writes the JSON files
(orbax coordinates checkpoints itself).
"""

import json
import os
from typing import Any

import jax


def is_writer() -> bool:
  """True on the process that writes the JSON files (process 0)."""
  return jax.process_index() == 0


def write_json(path: str, obj: Any) -> None:
  """Writes ``obj`` as indented JSON, atomically (never a half-written file)."""
  if not is_writer():
    return
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=2, sort_keys=True)
  os.replace(tmp, path)


def _kept_lines(path: str, step: int) -> list[str]:
  kept = []
  if step > 0 and os.path.exists(path):
    with open(path) as f:
      for line in f:
        try:
          if json.loads(line)["step"] <= step:
            kept.append(line if line.endswith("\n") else line + "\n")
        except (ValueError, KeyError, TypeError):
          continue  # a torn last line (killed mid-write)
  return kept


class MetricsLog:
  """``metrics.jsonl``, continued from ``start_step`` (later lines are dropped).

  Lines past a resumed checkpoint were written by the interrupted run and will be logged
  again. ``path=None`` (or a process other than 0) logs nothing.
  """

  def __init__(self, path: str | None, start_step: int = 0):
    self._file = None
    if path and is_writer():
      os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
      kept = _kept_lines(path, start_step)
      with open(path + ".tmp", "w") as f:
        f.writelines(kept)
      os.replace(path + ".tmp", path)
      self._file = open(path, "a")

  def write(self, record: dict) -> None:
    if self._file is not None:
      self._file.write(json.dumps(record) + "\n")
      self._file.flush()

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
      self._file = None


def check_workdir_early(workdir: str) -> None:
  """Cheap check that creates nothing: the nearest existing ancestor is a writable dir."""
  path = os.path.abspath(workdir)
  while not os.path.exists(path):
    path = os.path.dirname(path)
  if not os.path.isdir(path) or not os.access(path, os.W_OK):
    raise ValueError(f"workdir {workdir!r} cannot be written: {path!r} is not a writable directory")


def check_workdir(workdir: str) -> None:
  """Creates ``workdir`` and proves it writable (a probe file, removed again)."""
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, f".write_test.{jax.process_index()}")
    with open(probe, "w") as f:
      f.write("")
    os.remove(probe)
  except OSError as e:
    raise ValueError(f"workdir {workdir!r} cannot be written: {e}") from e
