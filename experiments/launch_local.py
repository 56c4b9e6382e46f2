r"""Runs a multi-process job on this machine: N cooperating copies of ``experiments.train``.

  python -m experiments.launch_local --processes=2 -- \
      --config=experiments/configs/default.py:smoke --workdir=/tmp/mtl2

Each process gets ``JAX_COORDINATOR_ADDRESS=127.0.0.1:PORT`` (a free port unless
``--port``), ``JAX_NUM_PROCESSES=N`` and ``JAX_PROCESS_ID=i`` and runs ``python -m
experiments.train <args after -->`` (``--config.distributed=True`` added), so the mesh spans
every process's devices (``--devices_per_process`` virtual CPU devices each, through
``XLA_FLAGS``) exactly as on a cluster of N hosts. Their output is forwarded line by line
with a ``[pI]`` prefix. The launcher exits 0 when every process does. When one fails, the
others notice within ``--heartbeat_timeout`` seconds (JAX stops a process whose peer went
silent) and are killed after ``--grace`` more; the launcher prints one line ``error:
process I ... first; then ...`` saying how each ended and exits with the first failure's
status (1 for a signal). Ctrl-C (or SIGTERM) is forwarded to every process.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

from absl import app, flags

flags.DEFINE_integer("processes", 2, "How many processes.")
flags.DEFINE_integer("port", 0, "Coordinator port on 127.0.0.1 (0: a free one).")
flags.DEFINE_integer("devices_per_process", 1, "Virtual CPU devices per process (XLA_FLAGS).")
flags.DEFINE_float("grace", 30.0, "Seconds the others get to stop after one fails.")
flags.DEFINE_integer(
  "heartbeat_timeout",
  10,
  "Seconds without a peer's heartbeat before a process stops (passed to each process).",
)
flags.DEFINE_string("module", "experiments.train", "The module each process runs.")
FLAGS = flags.FLAGS

DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def free_port() -> int:
  """A TCP port nothing listens on right now (the OS picks it)."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def process_env(base: dict, port: int, n: int, i: int, devices: int) -> dict:
  """Process ``i``'s environment: the JAX_* coordination variables and its device count."""
  xla = [f for f in base.get("XLA_FLAGS", "").split() if not f.startswith(DEVICE_COUNT_FLAG)]
  return dict(
    base,
    JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
    JAX_NUM_PROCESSES=str(n),
    JAX_PROCESS_ID=str(i),
    XLA_FLAGS=" ".join([*xla, f"{DEVICE_COUNT_FLAG}={devices}"]),
  )


def _forward(stream, out, prefix: str, lock: threading.Lock):
  for line in iter(stream.readline, ""):
    with lock:
      out.write(prefix + line)
      out.flush()
  stream.close()


def _start(args: list[str], port: int) -> tuple[list, list]:
  procs, threads, lock = [], [], threading.Lock()
  cmd = [sys.executable, "-u", "-m", FLAGS.module, f"--heartbeat_timeout={FLAGS.heartbeat_timeout}"]
  cmd += [*args, "--config.distributed=True"]
  for i in range(FLAGS.processes):
    env = process_env(os.environ, port, FLAGS.processes, i, FLAGS.devices_per_process)
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(p)
    for stream, out in ((p.stdout, sys.stdout), (p.stderr, sys.stderr)):
      t = threading.Thread(target=_forward, args=(stream, out, f"[p{i}] ", lock), daemon=True)
      t.start()
      threads.append(t)
  return procs, threads


def describe(status: int) -> str:
  """``exited with status S`` or ``was killed by SIGNAME`` (Popen's negative codes)."""
  if status < 0:
    try:
      return f"was killed by {signal.Signals(-status).name}"
    except ValueError:
      return f"was killed by signal {-status}"
  return f"exited with status {status}"


def _wait(procs: list) -> tuple[int, int] | None:
  """Waits for every process; the first failure ``(index, status)``, or None."""
  failed, deadline = None, None
  while True:
    statuses = [p.poll() for p in procs]  # every one, every time: who failed first
    if failed is None:
      failed = next(((i, s) for i, s in enumerate(statuses) if s), None)
      if failed is not None:
        deadline = time.monotonic() + FLAGS.grace
    if all(s is not None for s in statuses):
      return failed
    if failed is not None and time.monotonic() > deadline:
      for p in procs:
        if p.poll() is None:
          p.kill()
    time.sleep(0.05)


def main(argv):
  args = argv[1:]
  if args and args[0] == "--":
    args = args[1:]
  if FLAGS.processes < 1 or FLAGS.devices_per_process < 1:
    print("error: --processes and --devices_per_process must be >= 1", file=sys.stderr)
    sys.exit(2)
  procs, threads = _start(args, FLAGS.port or free_port())

  def forward_signal(signum, frame):
    for p in procs:
      if p.poll() is None:
        p.send_signal(signum)

  signal.signal(signal.SIGINT, forward_signal)
  signal.signal(signal.SIGTERM, forward_signal)
  failed = _wait(procs)
  for t in threads:
    t.join(timeout=5)
  if failed is not None:
    i, status = failed
    others = [f"process {j} {describe(p.returncode)}" for j, p in enumerate(procs) if j != i]
    then = f"; then {', '.join(others)}" if others else ""
    print(f"error: process {i} {describe(status)} first{then}", file=sys.stderr)
    sys.exit(status if 0 < status < 256 else 1)


if __name__ == "__main__":
  app.run(main)
