"""Multi-process training on one machine: two processes x one CPU device each.

JAX's multi-controller runtime (``jax.distributed`` + gloo collectives) runs here exactly as
on a cluster of two hosts, so this is the multi-host path as users run it:

* the launcher (``experiments.launch_local``) trains the default smoke config (two seeds
  and the ``independent`` baseline) on 2 processes, and the result equals 1 process x 2
  virtual devices (the same 2 x 1 mesh) — in fact bit for bit; only process 0 writes the
  JSON files, every process writes its checkpoint shards;
* an aggregator (``pcgrad``, one seed, so every step all-reduces gradients across the
  processes): process 1 is SIGKILLed mid-run, process 0 stops on its own within the
  heartbeat timeout, nothing in the workdir is half-written, and the same command resumes
  from the last checkpoint and ends bit-identical to an uninterrupted run;
* a coordinator port already in use is one clear error before any work.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = "--config=experiments/configs/default.py:smoke"
HEARTBEAT_S = 5  # the survivor must stop within this (+ the slack below)
STOP_SLACK_S = 15
JAX_VARS = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def _env(devices: int, **extra) -> dict:
  env = {k: v for k, v in os.environ.items() if k not in JAX_VARS}
  env.update(
    JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", **extra
  )
  return env


def _train(args, workdir, devices=2, **extra) -> subprocess.CompletedProcess:
  cmd = [sys.executable, "-m", "experiments.train", *args, "--noprogress", f"--workdir={workdir}"]
  return subprocess.run(
    cmd, cwd=ROOT, env=_env(devices, **extra), capture_output=True, text=True, timeout=600
  )


def _launch(args, workdir) -> subprocess.CompletedProcess:
  cmd = [sys.executable, "-m", "experiments.launch_local", "--processes=2"]
  cmd += [f"--heartbeat_timeout={HEARTBEAT_S}", "--"]
  cmd += [*args, "--noprogress", f"--workdir={workdir}"]
  return subprocess.run(cmd, cwd=ROOT, env=_env(1), capture_output=True, text=True, timeout=600)


def _numbers(a, b, path="") -> list[float]:
  """|a - b| for every number of two JSON trees (timings skipped); other leaves must match."""
  if isinstance(a, dict):
    assert set(a) == set(b), path
    return [d for k in a if k != "train_time_s" for d in _numbers(a[k], b[k], f"{path}.{k}")]
  if isinstance(a, list):
    assert len(a) == len(b), path
    return [d for i, (x, y) in enumerate(zip(a, b)) for d in _numbers(x, y, f"{path}[{i}]")]
  if isinstance(a, (int, float)) and not isinstance(a, bool):
    return [abs(float(a) - float(b))]
  assert a == b, path
  return []


def _load(workdir, name="summary.json"):
  with open(os.path.join(workdir, name)) as f:
    return json.load(f)


def _metrics(workdir) -> list[dict]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]  # every line parses: nothing torn


def _no_temporaries(workdir):
  left = [os.path.join(d, n) for d, _, names in os.walk(workdir) for n in names if ".tmp" in n]
  assert not left, left


def test_two_processes_equal_one_process_two_devices(tmp_path):
  args = [SMOKE, "--config.num_steps=4", "--config.log_every=2", "--config.checkpoint_every=2"]
  two = _launch(args, tmp_path / "two")
  assert two.returncode == 0, two.stderr[-4000:]
  one = _train(args, tmp_path / "one")
  assert one.returncode == 0, one.stderr[-4000:]
  diffs = _numbers(_load(tmp_path / "one"), _load(tmp_path / "two"))
  print(f"max |summary 1 process x 2 devices - 2 processes x 1 device| = {max(diffs):.3g}")
  assert max(diffs) <= 1e-6
  assert max(diffs) == 0.0  # same 2 x 1 mesh: bit for bit
  # Output is forwarded with a prefix; only process 0 prints the table.
  assert "[p0] summary: " in two.stdout and "[p1] summary:" not in two.stdout
  assert "[p1] workdir: " in two.stdout
  for run in ("", "baseline"):
    wd = tmp_path / "two" / run
    # One writer: each logged chunk once (two writers would append every line twice).
    assert [r["step"] for r in _metrics(wd)] == [2, 4]
    for step in (2, 4):  # checkpoints hold both processes' shards
      state = wd / "checkpoints" / str(step) / "state"
      assert {"ocdbt.process_0", "ocdbt.process_1"} <= set(os.listdir(state)), step
  assert _load(tmp_path / "two", "config.json")["distributed"] is True
  _no_temporaries(tmp_path / "two")


def _start_pair(args, workdir, port, logs) -> list[subprocess.Popen]:
  """Two ``experiments.train`` processes; process i's output goes to ``logs / f"p{i}.txt"``."""
  cmd = [sys.executable, "-m", "experiments.train", *args, "--noprogress"]
  cmd += [f"--workdir={workdir}", f"--heartbeat_timeout={HEARTBEAT_S}"]
  coord = {"JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", "JAX_NUM_PROCESSES": "2"}
  procs = []
  for i in range(2):
    with open(logs / f"p{i}.txt", "w") as out:  # a file, not a pipe: never blocks
      env = _env(1, **coord, JAX_PROCESS_ID=str(i))
      procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=out))
  return procs


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _finished_steps(ckpt_dir) -> list[int]:
  """Finalized checkpoint steps (orbax renames ``N.orbax-checkpoint-tmp`` to ``N``)."""
  names = os.listdir(ckpt_dir) if os.path.isdir(ckpt_dir) else []
  return sorted(int(n) for n in names if n.isdigit())


def test_killed_peer_stops_the_other_and_rerun_resumes(tmp_path):
  wd, total = tmp_path / "wd", 60
  common = [SMOKE, "--config.method=pcgrad", "--config.num_seeds=1", "--config.baseline="]
  common += ["--config.log_every=5", "--config.checkpoint_every=5"]
  # No JAX_NUM_PROCESSES flag or --config.distributed: the environment alone makes it
  # one of two processes (it must never train alone into the shared workdir).
  procs = _start_pair([*common, "--config.num_steps=100000"], wd, _free_port(), tmp_path)
  stopped_s = None
  try:
    deadline = time.monotonic() + 300
    while not _finished_steps(wd / "checkpoints"):
      if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
        break
      time.sleep(0.05)
    procs[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    procs[0].wait(timeout=HEARTBEAT_S + STOP_SLACK_S)
    stopped_s = time.monotonic() - killed
  except subprocess.TimeoutExpired:
    pass
  finally:
    for p in procs:
      p.kill()
      p.wait()
  err = (tmp_path / "p0.txt").read_text()
  assert stopped_s is not None, f"process 0 still ran {HEARTBEAT_S + STOP_SLACK_S} s later"
  print(f"survivor stopped {stopped_s:.2f} s after its peer was SIGKILLed")
  assert _finished_steps(wd / "checkpoints"), err[-3000:]  # the kill came mid-run
  assert procs[0].returncode != 0
  assert "another task died" in err, err[-3000:]  # JAX's own message, naming the task:
  assert "The following tasks are unhealthy (stopped sending heartbeats):\n1\n" in err
  # Nothing half-written: config and metrics parse, no temporaries under a final name.
  config = _load(wd, "config.json")
  assert config["num_steps"] == 100000 and config["distributed"] is True
  saved = _finished_steps(wd / "checkpoints")[-1]
  assert saved < total and len(_metrics(wd)) >= saved // 5
  # The same command (here through the launcher) resumes from the last checkpoint.
  resumed = _launch([*common, f"--config.num_steps={total}"], wd)
  assert resumed.returncode == 0, resumed.stderr[-4000:]
  assert f"resuming from checkpoint step {saved}" in resumed.stderr
  _no_temporaries(wd)
  ref = _train([*common, f"--config.num_steps={total}"], tmp_path / "ref")
  assert ref.returncode == 0, ref.stderr[-4000:]
  assert max(_numbers(_load(tmp_path / "ref"), _load(wd))) == 0.0
  strip = lambda rs: [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rs]
  assert strip(_metrics(wd)) == strip(_metrics(tmp_path / "ref"))  # bit-identical, no gaps


def test_coordinator_port_in_use_is_one_clear_error(tmp_path):
  with socket.socket() as busy:
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    proc = _train(
      [SMOKE, f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", "--process_id=0"],
      tmp_path / "wd",
      devices=1,
    )
  assert proc.returncode == 2, proc.stderr[-3000:]
  lines = [line for line in proc.stderr.splitlines() if line.strip()]
  assert lines[-1].startswith("error: coordinator port") and "already in use" in lines[-1]
  assert str(port) in lines[-1] and "Traceback" not in proc.stderr
  assert not (tmp_path / "wd").exists()


def test_bad_process_settings_fail_before_jax_starts(monkeypatch):
  from mtl_jax import sharding

  for var in JAX_VARS:
    monkeypatch.delenv(var, raising=False)
  with pytest.raises(ValueError, match=r"process id must be in 0..1, got 2"):
    sharding.initialize_distributed("127.0.0.1:1", 2, 2)
  with pytest.raises(ValueError, match=r"number of processes must be >= 1, got 0"):
    sharding.initialize_distributed("127.0.0.1:1", 0, 0)
  with pytest.raises(ValueError, match=r"host:port, got 'nohost'"):
    sharding.initialize_distributed("nohost", 2, 0)
  monkeypatch.setenv("JAX_NUM_PROCESSES", "two")
  with pytest.raises(ValueError, match=r"JAX_NUM_PROCESSES must be an integer, got 'two'"):
    sharding.initialize_distributed()
  monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
  assert sharding.distributed_requested(None)
  monkeypatch.setenv("JAX_NUM_PROCESSES", "1")
  assert not sharding.distributed_requested({"distributed": False})
  assert sharding.distributed_requested({"distributed": True})


def test_launcher_reports_the_first_failure_and_stops_the_rest():
  cmd = [sys.executable, "-m", "experiments.launch_local", "--processes=2", "--grace=1"]
  cmd += ["--module=tests.launch_local_worker", "--", "--workdir=x"]
  t0 = time.monotonic()
  proc = subprocess.run(cmd, cwd=ROOT, env=_env(1), capture_output=True, text=True, timeout=60)
  assert time.monotonic() - t0 < 30  # process 0 was killed after the grace, not waited for
  assert proc.returncode == 3, proc.stderr
  assert "[p0] hello from 0 of 2" in proc.stdout and "[p1] hello from 1 of 2" in proc.stdout
  assert "'--workdir=x', '--config.distributed=True'" in proc.stdout
  last = proc.stderr.strip().splitlines()[-1]
  assert last == "error: process 1 exited with status 3 first; then process 0 was killed by SIGKILL"
