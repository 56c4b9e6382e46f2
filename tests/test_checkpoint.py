"""Kill the real launcher mid-run (SIGKILL), rerun it, and get bit-identical parameters.

Two launcher processes start together on fresh workdirs: one runs to the end, the other is
killed (SIGKILL) at a random logged step once a checkpoint exists, then rerun as is.
The resumed run must end with exactly the same parameters (every bit) and the same
``metrics.jsonl`` (no step lost or logged twice) as the uninterrupted one.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_STEPS = 400
ARGS = [
  "--config=experiments/configs/default.py:smoke",
  f"--config.num_steps={NUM_STEPS}",
  "--config.log_every=5",
  "--config.checkpoint_every=10",
  "--config.baseline=",
  "--config.model_kwargs.width=16",
  "--config.batch_size=8",
  "--progress=false",
]


def _launch(workdir, log_name):
  """Starts the launcher; its output goes to a file (a full pipe would block the child)."""
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env.pop("XLA_FLAGS", None)
  log = open(f"{workdir}.{log_name}.log", "w")
  proc = subprocess.Popen(
    [sys.executable, "-m", "experiments.train", *ARGS, f"--workdir={workdir}"],
    cwd=ROOT,
    env=env,
    stdout=log,
    stderr=subprocess.STDOUT,
    text=True,
  )
  log.close()
  return proc


def _output(workdir, log_name):
  with open(f"{workdir}.{log_name}.log") as f:
    return f.read()


def _steps(ckpt_dir):
  if not os.path.isdir(ckpt_dir):
    return []
  return sorted(int(d) for d in os.listdir(ckpt_dir) if d.isdigit())


def _final_state(workdir):
  ckpt_dir = os.path.join(workdir, "checkpoints")
  step = max(_steps(ckpt_dir))
  mngr = ocp.CheckpointManager(ckpt_dir, options=ocp.CheckpointManagerOptions(create=False))
  try:
    state = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore())).state
  finally:
    mngr.close()
  return step, state


def _last_logged(workdir):
  try:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      lines = f.read().splitlines()
    return json.loads(lines[-1])["step"] if lines else 0
  except (OSError, ValueError):  # not there yet, or a line half-written
    return 0


def _log(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    lines = [json.loads(line) for line in f]
  for line in lines:
    line.pop("elapsed_s")
  return lines


def test_sigkill_and_resume_is_bit_identical(tmp_path):
  full, killed = str(tmp_path / "full"), str(tmp_path / "killed")
  # Kill as soon as a random logged step is reached and a checkpoint is on disk.
  target = random.randrange(15, NUM_STEPS // 2, 5)
  p_full, p_kill = _launch(full, "run"), _launch(killed, "run")
  try:
    deadline = time.time() + 90
    while not (_steps(os.path.join(killed, "checkpoints")) and _last_logged(killed) >= target):
      assert p_kill.poll() is None, _output(killed, "run")[-3000:]
      assert time.time() < deadline, f"step {target} and a checkpoint not seen within 90 s"
      time.sleep(0.005)
    p_kill.send_signal(signal.SIGKILL)
    p_kill.wait()
  finally:
    if p_kill.poll() is None:
      p_kill.kill()
  saved = _steps(os.path.join(killed, "checkpoints"))
  assert not os.path.exists(os.path.join(killed, "summary.json")), (
    "the run finished before it was killed; raise NUM_STEPS"
  )
  assert p_full.wait(timeout=120) == 0, _output(full, "run")[-3000:]

  rerun = _launch(killed, "rerun")
  assert rerun.wait(timeout=120) == 0, _output(killed, "rerun")[-3000:]
  err = _output(killed, "rerun")
  assert "resuming from checkpoint step" in err
  resumed_at = int(err.split("resuming from checkpoint step")[1].split()[0])
  assert resumed_at >= min(saved) and resumed_at % 10 == 0
  print(
    f"killed after logging step {target} with checkpoints {saved}; resumed at step {resumed_at}"
  )

  step_a, state_a = _final_state(full)
  step_b, state_b = _final_state(killed)
  assert step_a == step_b == NUM_STEPS
  leaves_a = jax.tree_util.tree_flatten_with_path(state_a)[0]
  leaves_b = dict(jax.tree_util.tree_flatten_with_path(state_b)[0])
  assert len(leaves_a) == len(leaves_b) > 5
  for path, a in leaves_a:
    np.testing.assert_array_equal(
      np.asarray(a), np.asarray(leaves_b[path]), err_msg=jax.tree_util.keystr(path)
    )
  # metrics.jsonl continues: every step once, values equal to the uninterrupted run's.
  log_a, log_b = _log(full), _log(killed)
  assert [r["step"] for r in log_b] == list(range(5, NUM_STEPS + 1, 5))
  assert log_a == log_b
  with (
    open(os.path.join(full, "summary.json")) as f,
    open(os.path.join(killed, "summary.json")) as g,
  ):
    assert json.load(f)["tasks"] == json.load(g)["tasks"]


def _small_config(**overrides):
  from experiments.configs import default

  config = default.get_config("smoke")
  config.baseline = ""
  config.model_kwargs.width = 8
  config.num_steps = 40
  config.log_every = 5
  config.checkpoint_every = 10
  config.num_seeds = 1  # one run: these tests read its state directly (seeds: test_seeds.py)
  for key, value in overrides.items():
    config[key] = value
  return config


def test_nan_stops_with_task_and_step_and_keeps_good_checkpoints(tmp_path, monkeypatch):
  import jax.numpy as jnp

  from mtl_jax import build, experiment

  make_train_step = build.make_train_step

  def poisoned(model, data, *args, **kwargs):
    # From step 23 on, task 2 (rot180) sees NaN inputs: its loss turns NaN mid-chunk.
    init_state, good = make_train_step(model, data, *args, **kwargs)
    _, bad = make_train_step(
      model, data._replace(x_train=data.x_train.at[2].set(jnp.nan)), *args, **kwargs
    )
    return init_state, lambda s: jax.lax.cond(s.step >= 22, bad, good, s)

  monkeypatch.setattr(build, "make_train_step", poisoned)
  workdir = str(tmp_path / "wd")
  with pytest.raises(experiment.NonFiniteError) as info:
    experiment.train_and_evaluate(_small_config(), workdir, progress=False)
  msg = str(info.value)
  print(msg)
  assert "non-finite values at step 23: the loss of task(s) rot180 is NaN/Inf" in msg
  assert "latest checkpoint is step 20" in msg
  assert _steps(os.path.join(workdir, "checkpoints")) == [10, 20]
  assert [r["step"] for r in _log(workdir)] == [5, 10, 15, 20]
  step, state = _final_state(workdir)
  assert step == 20
  for leaf in jax.tree.leaves(state):
    assert np.all(np.isfinite(np.asarray(leaf)))


def test_nonfinite_update_is_caught(tmp_path):
  from mtl_jax import experiment

  config = _small_config(optimizer="sgd", learning_rate=1e38, num_steps=10)
  with pytest.raises(experiment.NonFiniteError, match=r"step 1: the update .* is NaN/Inf"):
    experiment.train_and_evaluate(config, str(tmp_path / "wd"), progress=False)
  assert not os.path.exists(tmp_path / "wd" / "checkpoints")


def test_unfinished_save_is_removed_at_the_next_save_not_on_reading(tmp_path):
  from mtl_jax.checkpoint import Checkpointer

  directory = tmp_path / "checkpoints"
  first = Checkpointer(str(directory))
  first.save(1, {"w": np.ones(3, np.float32)}, {"seed": 0})
  first.close()
  # What a process killed mid-save leaves behind (orbax renames it to "7" when complete).
  (directory / "7.orbax-checkpoint-tmp" / "state").mkdir(parents=True)
  reader = Checkpointer(str(directory))
  assert reader.latest_step() == 1
  reader.close()
  assert (directory / "7.orbax-checkpoint-tmp").exists()  # reading deletes nothing
  writer = Checkpointer(str(directory))
  writer.save(2, {"w": np.zeros(3, np.float32)}, {"seed": 0})
  writer.close()
  assert sorted(os.listdir(directory)) == ["1", "2"]
