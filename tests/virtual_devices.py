"""Runs a test file as a script in a fresh process with N virtual CPU devices.

A process's device count is fixed when JAX starts, so mesh tests re-run their own file
(its ``__main__`` block does the multi-device work and prints JSON) under
``--xla_force_host_platform_device_count``.
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_script(path: str, num_devices: int, timeout: float = 300) -> str:
  """Runs ``path`` with ``num_devices`` CPU devices and this checkout's mtl_jax first on the
  path; asserts it exits 0 (showing the end of its stderr if not) and returns its stdout."""
  env = dict(
    os.environ,
    XLA_FLAGS=f"--xla_force_host_platform_device_count={num_devices}",
    JAX_PLATFORMS="cpu",
    PYTHONPATH=ROOT,
  )
  proc = subprocess.run(
    [sys.executable, os.path.abspath(path)],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=timeout,
  )
  assert proc.returncode == 0, proc.stderr[-4000:]
  return proc.stdout
