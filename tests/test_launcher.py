"""The launcher as a new user meets it: steering flags work, every mistake is one line.

Each bad command line must exit with status 2, print exactly one line ``error: ...`` on
stderr (no traceback) and leave the workdir unwritten; ``--debug`` brings the traceback
back. The good ones are the commands people type first (switching the model or the
method, setting a method's hyperparameter), at smoke size.
"""

import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = "--config=experiments/configs/default.py:smoke"
FAST = ["--config.num_steps=4", "--config.log_every=2", "--noprogress"]


def _run(args, workdir):
  cmd = [sys.executable, "-m", "experiments.train", *args, f"--workdir={workdir}"]
  return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


BAD = [
  (["--config.nosuchfield=1"], r"unknown config field 'nosuchfield'"),
  (["--config.model_kwargs.widht=3"], r"'model_kwargs.widht'; did you mean model_kwargs.width"),
  (["--config.method=cagrad", "--config.method_kwargs.cc=1"], r"did you mean method_kwargs.c"),
  (["--config.learning_rate=-1"], r"learning_rate must be a finite number > 0.0, got -1.0"),
  (["--config.learning_rate=nan"], r"learning_rate must be a finite number > 0.0, got nan"),
  (["--config.weight_decay=-0.1"], r"weight_decay must be a finite number >= 0.0"),
  (["--config.batch_size=0"], r"batch_size must be >= 1, got 0"),
  (["--config.model=nope"], r"unknown model 'nope'; valid names: .*hard_sharing.*mmoe"),
  (["--config.method=nope"], r"unknown method 'nope'; loss weightings: .*aggregators: .*pcgrad"),
  (["--config.taskset=nope"], r"unknown task set 'nope'; valid names: .*rotated_digits"),
  (["--config.optimizer=adom"], r"unknown optimizer 'adom'; valid: adam, adamw, sgd"),
  (["--config=experiments/configs/default.py:smok"], r"unknown config argument 'smok'"),
  (
    ["--config=experiments/configs/nope.py"],
    r"config file 'experiments/configs/nope.py' not found",
  ),
  (["--config.num_steps=abc"], r"--config.num_steps=abc: invalid literal"),
  (
    ["--config.method=static", "--config.method_kwargs.weights=(1,2)"],
    r"static weights: expected 4 values \(one per task\), got 2",
  ),
  (["--config.tasks_per_batch=9"], r"tasks_per_batch \(K\) = 9 but the task set has T = 4"),
]


@pytest.mark.parametrize("args,pattern", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_nothing_written(args, pattern, tmp_path):
  workdir = tmp_path / "wd"
  proc = _run(args, workdir)
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = [line for line in proc.stderr.splitlines() if line.strip()]
  errors = [line for line in lines if line.startswith("error: ")]
  assert len(errors) == 1 and errors[0] == lines[-1], proc.stderr
  assert "Traceback" not in proc.stderr
  assert re.search(pattern, errors[0]), errors[0]
  assert not workdir.exists()
  assert proc.stdout == ""  # not even the workdir line: nothing started


def test_debug_flag_shows_the_traceback(tmp_path):
  proc = _run(["--config.learning_rate=-1", "--debug"], tmp_path / "wd")
  assert proc.returncode != 0
  assert "Traceback" in proc.stderr and "learning_rate must be" in proc.stderr


@pytest.mark.parametrize("model", ["mmoe", "ple"])
def test_switching_the_model_drops_the_old_kwargs_with_a_notice(model, tmp_path):
  proc = _run([SMOKE, f"--config.model={model}", *FAST], tmp_path / "wd")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert f"note: model '{model}' does not take model_kwargs trunk: dropped" in proc.stderr
  with open(tmp_path / "wd" / "config.json") as f:
    config = json.load(f)
  assert config["model"] == model and "trunk" not in config["model_kwargs"]
  assert config["model_kwargs"]["width"] == 128  # default.py's width: mmoe/ple take it too
  with open(tmp_path / "wd" / "summary.json") as f:
    summary = json.load(f)
  assert summary["baseline"]["model"] == "independent"
  assert set(summary["tasks"]) == {"rot0", "rot90", "rot180", "rot270"}


@pytest.mark.parametrize(
  "args",
  [
    ["--config=experiments/configs/default.py:smoke,method=cagrad"],
    [SMOKE, "--config.method=cagrad"],
  ],
)
def test_method_hyperparameter_reaches_the_method_not_the_baseline(args, tmp_path):
  proc = _run([*args, "--config.method_kwargs.c=0.2", *FAST], tmp_path / "wd")
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(tmp_path / "wd" / "config.json") as f:
    config = json.load(f)
  assert config["method"] == "cagrad" and config["method_kwargs"]["c"] == 0.2
  assert config["baseline_method"] == "equal"
  assert os.path.exists(tmp_path / "wd" / "baseline" / "metrics.jsonl")


def test_static_weights_from_the_command_line(tmp_path):
  args = [SMOKE, "--config.method=static", "--config.method_kwargs.weights=(1,2,1,1)", *FAST]
  proc = _run(args, tmp_path / "wd")
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(tmp_path / "wd" / "config.json") as f:
    assert json.load(f)["method_kwargs"]["weights"] == [1, 2, 1, 1]
