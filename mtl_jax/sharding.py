"""SPMD with JAX's own sharding: a ``("data", "task")`` mesh and where each array lives.

What is sharded, and why:

* **Task batches** ``x [K, B, ...]``, ``y [K, B, Y]`` are split over ``"data"`` along the
  example axis B (not K): K is often small (2–4 sampled tasks) and varies by config,
  while B is the per-task batch the user picks, so ``batch_size % data == 0`` is the one
  divisibility rule. The constraint is applied inside the jitted step right after sampling
  (the sampler runs on the device), so XLA all-reduces the gradients over ``"data"``.
* **Per-task parameters** (leaves under ``params["tasks"]`` with leading axis T) and the
  optimizer-state leaves that mirror them (Adam's μ/ν under a ``"tasks"`` key) are split
  over ``"task"`` along axis 0 when ``T % task == 0``; otherwise they are replicated
  (correct, just not memory-saving).
* Shared parameters, method state, step, RNG and the device-resident task data are
  replicated: the sampler gathers random rows of any task, which is cheapest when every
  device holds them.

A mesh of one device (``data * task == 1``) returns ``None`` from :func:`make_mesh` and
the training path is exactly the single-device one (no ``device_put``, no constraints).

Multi-host (multi-process). Every process runs the same command; :func:`initialize_distributed`
(called by the launcher for ``--config.distributed=True``, ``JAX_NUM_PROCESSES`` > 1 or the
``--coordinator_address`` / ``--num_processes`` / ``--process_id`` flags) joins them with
``jax.distributed.initialize`` before any JAX work: the address, count and id come from its
arguments or ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID``, and
what is left unset JAX auto-detects (Cloud TPU, SLURM, Open MPI, Kubernetes). On CPU the
collectives are gloo's. ``jax.devices()`` then lists every process's devices, the mesh spans
them all (``mesh.data=-1`` takes whatever the task axis leaves), every process builds the
same task set from the same seed, and arrays are assembled with
``jax.make_array_from_callback`` (:func:`put`). Only process 0 writes ``config.json``,
``metrics.jsonl``, ``summary.json`` and the plots; orbax writes checkpoints from all
processes (each its own shards), so the workdir must be on a file system every process
sees. A process whose peer dies is terminated by JAX once the peer has missed heartbeats for
``heartbeat_timeout_s`` (at once when process 0, the coordinator, dies).
``experiments/launch_local.py`` runs N such processes on one machine (tests/test_multihost.py).
"""

import os
import socket
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from mtl_jax.data.sampling import TaskBatch

AXES = ("data", "task")
_DISTRIBUTED = False
# A peer silent for this long is taken as dead (JAX: 100 s); see initialize_distributed.
HEARTBEAT_TIMEOUT_S = 100
INIT_TIMEOUT_S = 300  # how long the processes wait for each other to connect


def _env_int(name: str, value: int | None) -> int | None:
  if value is not None or not os.environ.get(name):
    return value
  try:
    return int(os.environ[name])
  except ValueError:
    raise ValueError(f"{name} must be an integer, got {os.environ[name]!r}") from None


def check_port_free(address: str) -> None:
  """Raises ``ValueError`` when the coordinator's ``host:port`` cannot be bound here.

  Called on process 0 before ``jax.distributed.initialize`` (whose coordinator binds
  ``[::]:port``), so a port taken by another job is one clear error, not a hang.
  """
  host, sep, port = address.rpartition(":")
  if not sep or not host or not port.isdigit():
    raise ValueError(f"coordinator address must be host:port, got {address!r}")
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
      s.bind(("", int(port)))
    except OSError as e:
      raise ValueError(
        f"coordinator port {port} (address {address}) is already in use on this host "
        f"({e.strerror}); pick a free port for JAX_COORDINATOR_ADDRESS / --coordinator_address"
      ) from None


def distributed_requested(config: Any = None) -> bool:
  """A multi-process run: ``config.distributed``, or ``JAX_NUM_PROCESSES`` > 1 in the
  environment (a process started as one of several must never train on its own)."""
  if config is not None and config.get("distributed"):
    return True
  return (_env_int("JAX_NUM_PROCESSES", None) or 1) > 1


def initialize_distributed(
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
  heartbeat_timeout_s: int = HEARTBEAT_TIMEOUT_S,
  init_timeout_s: int = INIT_TIMEOUT_S,
) -> None:
  """Joins a multi-process job (``jax.distributed.initialize``); call before any JAX work.

  Each argument left ``None`` comes from ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES``
  / ``JAX_PROCESS_ID``; what is still unset JAX auto-detects (Cloud TPU, SLURM, Open MPI,
  Kubernetes). On CPU the cross-process collectives are gloo's (over TCP). A process whose
  peer stops sending heartbeats for ``heartbeat_timeout_s`` seconds is stopped by JAX; a
  peer that does not connect within ``init_timeout_s`` seconds is an error.

  Raises:
    ValueError: a malformed address or count, a process id out of range, or (on process
      0) a coordinator port already in use — before JAX is touched.
  """
  global _DISTRIBUTED
  if _DISTRIBUTED or jax.distributed.is_initialized():  # e.g. a second train_and_evaluate
    return
  address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS") or None
  num = _env_int("JAX_NUM_PROCESSES", num_processes)
  pid = _env_int("JAX_PROCESS_ID", process_id)
  if num is not None and num < 1:
    raise ValueError(f"number of processes must be >= 1, got {num}")
  if pid is not None and (pid < 0 or (num is not None and pid >= num)):
    raise ValueError(f"process id must be in 0..{(num or 1) - 1}, got {pid}")
  if address is not None and pid == 0:
    check_port_free(address)
  if not jax.config.jax_cpu_collectives_implementation:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(
    address,
    num,
    pid,
    initialization_timeout=init_timeout_s,
    heartbeat_timeout_seconds=heartbeat_timeout_s,
  )
  _DISTRIBUTED = True


def mesh_shape(mesh_config: Any, num_devices: int) -> tuple[int, int]:
  """Resolves ``{data, task}`` sizes (one of them may be -1: the rest of the devices).

  Raises ``ValueError`` naming the field when the sizes cannot fit ``num_devices``.
  """
  data = int(mesh_config.get("data", -1)) if mesh_config else 1
  task = int(mesh_config.get("task", 1)) if mesh_config else 1
  if data == -1 and task == -1:
    raise ValueError("config.mesh: at most one of data, task may be -1")
  for name, v in (("data", data), ("task", task)):
    if v == 0 or v < -1:
      raise ValueError(f"config.mesh.{name} must be >= 1 or -1 (all remaining devices), got {v}")
  if data == -1 or task == -1:
    fixed_name, fixed = ("task", task) if data == -1 else ("data", data)
    if num_devices % fixed:
      raise ValueError(
        f"config.mesh: {num_devices} devices do not split evenly by {fixed_name}={fixed}"
      )
    if data == -1:
      data = num_devices // task
    else:
      task = num_devices // data
  if data * task > num_devices:
    raise ValueError(
      f"config.mesh: data={data} x task={task} needs {data * task} devices but "
      f"only {num_devices} are visible (set config.mesh.data/task, or "
      "XLA_FLAGS=--xla_force_host_platform_device_count=N on CPU)"
    )
  return data, task


def make_mesh(mesh_config: Any, devices: list | None = None) -> Mesh | None:
  """A ``("data", "task")`` mesh from ``config.mesh``, or ``None`` for one device.

  Uses the first ``data * task`` devices, so a smaller mesh than the machine is allowed.
  """
  devices = list(jax.devices() if devices is None else devices)
  data, task = mesh_shape(mesh_config, len(devices))
  if data * task == 1:
    return None
  return Mesh(np.array(devices[: data * task]).reshape(data, task), AXES)


def check_batch(mesh: Mesh | None, batch_size: int):
  """The example axis B is split over ``"data"``, so it must divide evenly."""
  if mesh is not None and batch_size % mesh.shape["data"]:
    raise ValueError(
      f"batch_size = {batch_size} is not divisible by the mesh's data axis "
      f"({mesh.shape['data']} devices); change config.batch_size or "
      "config.mesh.data"
    )


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def _under_tasks(path) -> bool:
  return any(isinstance(k, jax.tree_util.DictKey) and k.key == "tasks" for k in path)


def state_sharding(mesh: Mesh, state: Any, num_tasks: int) -> Any:
  """A pytree of ``NamedSharding`` for a ``TrainState`` (or any pytree holding params).

  Leaves under a ``"tasks"`` dict key whose leading axis is T go over ``"task"`` when T
  divides that axis; everything else is replicated.
  """
  split = num_tasks % mesh.shape["task"] == 0
  task_sh, rep = NamedSharding(mesh, P("task")), replicated(mesh)

  def pick(path, x):
    shape = np.shape(x)
    if split and _under_tasks(path) and len(shape) >= 1 and shape[0] == num_tasks:
      return task_sh
    return rep

  return jax.tree_util.tree_map_with_path(pick, state)


def seed_sharding(mesh: Mesh, state: Any, num_seeds: int) -> Any:
  """Shardings for a state with a leading seed axis: seeds split over every device of the
  mesh when they divide evenly (each device trains its own seeds), else replicated."""
  n = mesh.devices.size
  spec = NamedSharding(mesh, P(AXES)) if num_seeds % n == 0 else replicated(mesh)
  return jax.tree.map(lambda _: spec, state)


def batch_constraint(mesh: Mesh) -> Callable[[TaskBatch], TaskBatch]:
  """Inside the step: split the sampled batch's example axis B over ``"data"``."""
  ex = NamedSharding(mesh, P(None, "data"))
  rep = replicated(mesh)

  def constrain(batch: TaskBatch) -> TaskBatch:
    wsc = jax.lax.with_sharding_constraint
    return TaskBatch(wsc(batch.x, ex), wsc(batch.y, ex), wsc(batch.task, rep))

  return constrain


def put(tree: Any, shardings: Any) -> Any:
  """Places host/local arrays onto (possibly multi-host) shardings.

  One process: ``jax.device_put``. Several: every process holds the same values (same seed,
  same data), so each fills its own shards with ``jax.make_array_from_callback``.
  """
  if jax.process_count() == 1:
    return jax.device_put(tree, shardings)

  def one(x, sh):
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sh, lambda idx: host[idx])

  return jax.tree.map(one, tree, shardings)


def jit_sharded(
  fn: Callable, state_shardings: Any, mesh: Mesh, data_shardings: Any = None
) -> Callable:
  """``jit(fn)`` for ``fn(state) -> (state, metrics)`` keeping the state's layout fixed.

  Pinning in/out shardings keeps every chunk's output layout equal to its input's, so the
  donated buffers are reused and the chunk never recompiles; metrics come back replicated
  (every process can read them). With ``data_shardings`` it is ``fn(state, data)`` (per-seed
  data, laid out like the seed axis of the state).
  """
  ins = (state_shardings,) if data_shardings is None else (state_shardings, data_shardings)
  return jax.jit(
    fn,
    in_shardings=ins,
    out_shardings=(state_shardings, replicated(mesh)),
    donate_argnums=0,
  )
