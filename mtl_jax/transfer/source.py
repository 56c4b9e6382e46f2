"""The source of a transfer: θ read from any run's orbax checkpoint, fitted to a target model.

A *source* is the latest checkpoint of a finished run: a workdir written by
``python -m experiments.train`` (its ``checkpoints/``), a checkpoint directory itself, or a
pre-training run of :mod:`mtl_jax.transfer.study`. Only θ and the run's saved config are
read, never its data: the target model is the source's architecture (``model`` and
``model_kwargs`` from that config) built for one target task, and the chosen layers are
copied into it (:func:`transplant`).

Conventions: a source's ``params`` carry a leading seed axis S (S = 1 for a run without
``num_seeds``); fine-tuning run r starts from source seed ``r % S``. Task-specific layers
(a ``split`` or ``independent`` source's upper trunk, a kept head) are taken from row
``source_row`` of the source's task stack.
"""

import dataclasses
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mtl_jax import models
from mtl_jax.checkpoint import Checkpointer
from mtl_jax.tasks import TaskSet
from mtl_jax.transfer import optim


class SourceError(ValueError):
  """A source that cannot be used: missing, unreadable, or not fitting the target model."""


@dataclasses.dataclass
class Source:
  """A source run's θ (leading seed axis S on every leaf) and its saved config."""

  path: str  # the checkpoint directory read
  step: int
  config: dict
  params: dict  # {"shared": ..., "tasks": ...}, leaves [S, ...] (tasks: [S, T_src, ...])

  @property
  def num_seeds(self) -> int:
    return int(jax.tree.leaves(self.params)[0].shape[0])

  @property
  def num_tasks(self) -> int:
    leaves = jax.tree.leaves(self.params["tasks"])
    return int(leaves[0].shape[1]) if leaves else 0


def checkpoint_dir(path: str) -> str:
  """``path/checkpoints`` for a launcher workdir, else ``path`` itself."""
  sub = os.path.join(path, "checkpoints")
  return sub if os.path.isdir(sub) else path


def load_source(path: str) -> Source:
  """The latest checkpoint under ``path`` (a run's workdir or its ``checkpoints/``).

  Raises:
    SourceError: nothing there, or no checkpoint in it (the message names the path);
      :class:`~mtl_jax.checkpoint.CheckpointError` for unreadable files.
  """
  if not path or not os.path.isdir(path):
    raise SourceError(
      f"source checkpoint not found: {os.path.abspath(path or '.')!r} is not a directory "
      "(give the workdir of a finished `python -m experiments.train` run or its checkpoints/)"
    )
  directory = checkpoint_dir(path)
  ckpt = Checkpointer(directory)
  try:
    got = ckpt.read_latest()
  finally:
    ckpt.close()
  if got is None:
    raise SourceError(
      f"source checkpoint not found: no checkpoint in {os.path.abspath(directory)!r} "
      "(did that run finish? it saves at the end and every checkpoint_every steps)"
    )
  step, state, config = got
  params = jax.tree.map(np.asarray, state["params"])
  if int(config.get("num_seeds", 1) or 1) == 1:
    params = jax.tree.map(lambda p: p[None], params)
  return Source(os.path.abspath(directory), int(step), config, params)


def target_model(source_config: dict, target: TaskSet):
  """The source's architecture (its ``model`` and ``model_kwargs``) for ``target``'s task."""
  kwargs = dict(source_config.get("model_kwargs") or {})
  try:
    return models.get(
      source_config["model"],
      num_tasks=target.num_tasks,
      output_size=target.output_size,
      input_shape=target.input_shape,
      descriptors=target.descriptors,
      **kwargs,
    )
  except TypeError as e:
    raise SourceError(f"cannot build the source's model {source_config['model']!r}: {e}") from e


def init_params(model, target: TaskSet, keys: jax.Array) -> Any:
  """Fresh target-model parameters, one set per key (leading axis R = len(keys))."""
  x = jnp.asarray(target.x_train[0, :2])
  # Runs once: on CPU skip LLVM's optimisations (the PRNG is slow to compile), as build does.
  options = {"xla_backend_optimization_level": 0} if jax.default_backend() == "cpu" else None
  return jax.jit(jax.vmap(lambda k: model.init(k, x)), compiler_options=options)(keys)


def _name(path) -> str:
  return jax.tree_util.keystr(path, simple=True, separator="/")


def _mismatches(source: Source, template: Any, level_tree: Any, keep_head: bool) -> list[str]:
  """``"path: checkpoint S, target T"`` for each copied leaf whose shape differs."""
  have = {_name(p): x for p, x in jax.tree_util.tree_flatten_with_path(source.params)[0]}
  out = []
  flat = jax.tree_util.tree_flatten_with_path(template)[0]
  for (path, x), level in zip(flat, jax.tree.leaves(level_tree)):
    name, in_tasks = _name(path), _name(path).startswith("tasks/")
    if in_tasks and level == 0 and not keep_head:
      continue  # re-initialised: its shape is the target's own
    if name not in have:
      out.append(f"{name}: missing from the checkpoint, target {tuple(x.shape)}")
      continue
    saved = tuple(have[name].shape[2 if in_tasks else 1 :])
    want = tuple(x.shape[1:] if in_tasks else x.shape)
    if saved != want:
      out.append(f"{name}: checkpoint {saved}, target model {want}")
  return out


def check_fits(source: Source, model, target: TaskSet, keep_head: bool, source_row: int) -> None:
  """Raises :class:`SourceError` naming both shapes when the source does not fit ``model``."""
  x = jnp.asarray(target.x_train[0, :2])
  template = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
  bad = _mismatches(source, template, optim.levels(model, template), keep_head)
  if bad:
    raise SourceError(
      f"source checkpoint {source.path} does not fit the target model "
      f"({source.config.get('model')!r} on target inputs of shape {target.input_shape} with "
      f"{target.output_size} outputs): " + "; ".join(bad[:4]) + (" ..." if len(bad) > 4 else "")
    )
  if source.num_tasks and not 0 <= source_row < source.num_tasks:
    raise SourceError(
      f"source_row = {source_row} but the source {source.path} has {source.num_tasks} tasks"
    )


def transplant(
  source: Source, model, fresh: Any, seeds: np.ndarray, keep_head: bool, source_row: int = 0
) -> Any:
  """Target parameters for R runs: the source's layers, the head re-initialised or kept.

  Args:
    source: the source run.
    model: the target model (:func:`target_model`).
    fresh: freshly initialised target parameters, leading axis R (the re-initialised head
      is taken from here).
    seeds: ``[R]`` source seed of each run (taken modulo the source's seeds).
    keep_head: keep the source's head (row ``source_row``) instead of a fresh one.
    source_row: which task of the source supplies its task-specific layers.
  """
  one = jax.tree.map(lambda p: p[0], fresh)
  level_tree = optim.levels(model, one)
  s = np.asarray(seeds) % source.num_seeds

  def pick(path, new, level):
    name = _name(path)
    if name.startswith("tasks/"):
      if level == 0 and not keep_head:
        return new
      return jnp.asarray(_at(source.params, path)[s, source_row][:, None])
    return jnp.asarray(_at(source.params, path)[s])

  return jax.tree_util.tree_map_with_path(pick, fresh, level_tree)


def _at(tree, path):
  for k in path:
    tree = tree[getattr(k, "key", getattr(k, "idx", None))]
  return tree
