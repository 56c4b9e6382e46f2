"""Every command README.md shows runs (at smoke size), so documentation cannot rot.

Shell blocks: each ``python -m experiments.*`` command runs in a subprocess with its
config shrunk (``:smoke`` for ``experiments.train``, ``--smoke`` for other scripts),
size flags (``--config.num_steps``, ``--num_steps``, ``--seeds``, ``--correlations``)
dropped and ``--workdir`` pointed at a temporary directory. The install steps of the
set-up commands are checked for the files they name; ``python -m pytest`` is this suite.
Python blocks run with ``get_config("smoke")`` and their ``/tmp/...`` paths moved into a
temporary directory.
"""

import json
import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
DEFAULT = "experiments/configs/default.py"


def _blocks(lang: str) -> list[str]:
  with open(README) as f:
    text = f.read()
  return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def _commands() -> list[str]:
  out = []
  for block in _blocks("bash"):
    for line in block.splitlines():
      line = line.split("  #")[0].strip()  # trailing comments
      if line and not line.startswith("#"):
        out += [part.strip() for part in line.split("&&")]
  return out


def smoke_args(command: str, workdir: str) -> list[str]:
  """``python -m experiments.X ...`` as argv at smoke size, writing into ``workdir``."""
  argv = shlex.split(command)
  assert argv[:2] == ["python", "-m"] and argv[2].startswith("experiments."), command
  sizes = ("--workdir", "--config.num_steps", "--num_steps", "--seeds", "--correlations")
  args = [a for a in argv[3:] if not a.startswith(sizes)]  # smoke sets the sizes
  if argv[2] == "experiments.train":
    at = [i for i, a in enumerate(args) if a.startswith("--config=")]
    if at:
      path, _, arg = args[at[0]].removeprefix("--config=").partition(":")
      args[at[0]] = f"--config={path}:" + ",".join([a for a in arg.split(",") if a] + ["smoke"])
    else:
      args.insert(0, f"--config={DEFAULT}:smoke")
    args.append("--noprogress")
  else:
    args.append("--smoke")
  has_workdir = argv[2] == "experiments.train" or any(a.startswith("--workdir") for a in argv)
  return [sys.executable, "-m", argv[2], *args] + ([f"--workdir={workdir}"] if has_workdir else [])


READS_A_RUN = ("experiments.report",)
# What the lecture's experiment scripts must leave in their workdir (and a check of it).
EXPERIMENT_FILES = {
  "experiments.negative_transfer": ["results.json", "report.md", "delta_m_vs_correlation.png"],
  "experiments.overfitting": ["results.json", "report.md", "test_mse_vs_n_train.png"],
  "experiments.label_scaling": ["results.json", "report.md", "label_scaling.png"],
  "experiments.toy_pareto": ["results.json", "table.md", "trajectories.png"],
}


def _check_experiment(script: str, workdir) -> None:
  for name in EXPERIMENT_FILES[script]:
    assert os.path.getsize(workdir / name) > 100, name
  with open(workdir / "results.json") as f:
    results = json.load(f)
  if script == "experiments.toy_pareto":  # per method: where each of the five starts ended
    assert results["methods"] and "sum" in results["methods"]
    assert all(len(r["reached"]) == 5 for r in results["methods"].values())
    return
  rows = results["rows"]
  assert rows
  for row in rows:
    for value in row.values():
      if isinstance(value, dict) and "per_seed" in value:  # a described measurement
        assert len(value["per_seed"]) == 2 and value["ci95"][0] <= value["mean"]
  if script == "experiments.negative_transfer":  # arms at matched size (±10%)
    assert all(abs(r["param_ratio"] - 1.0) <= 0.1 for r in rows), rows


RUNS = [c for c in _commands() if c.startswith("python -m experiments.")]
OTHER = [c for c in _commands() if c not in RUNS]


def test_readme_shows_commands():
  assert len(RUNS) >= 8, RUNS
  assert any("experiments.train --workdir=" in c for c in RUNS)  # set-up command 1


@pytest.mark.parametrize("command", RUNS)
def test_readme_command_runs(command, tmp_path):
  argv = smoke_args(command, str(tmp_path / "wd"))
  if argv[2] in READS_A_RUN:  # it reads a finished run's workdir: make one first
    first = smoke_args(f"python -m experiments.train --workdir={tmp_path / 'wd'}", "")
    subprocess.run(first[:-1] + [f"--workdir={tmp_path / 'wd'}"], cwd=ROOT, check=True)
  proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
  if argv[2] in EXPERIMENT_FILES:
    _check_experiment(argv[2], tmp_path / "wd")
  if argv[2] in ("experiments.train",) + READS_A_RUN:
    assert os.path.exists(tmp_path / "wd" / "summary.json")
    assert os.path.exists(tmp_path / "wd" / "curves.png")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", OTHER)
def test_readme_setup_steps_are_sound(command):
  words = shlex.split(command)
  if words[:3] == ["python3", "-m", "venv"] or words[:1] == ["."]:
    return  # a fresh virtualenv and its activation
  if words[:2] == ["pip", "install"]:
    for i, w in enumerate(words):
      if w == "-r":
        assert os.path.exists(os.path.join(ROOT, words[i + 1])), command
      if w == "-e":
        assert os.path.exists(os.path.join(ROOT, "setup.py")), command
    return
  if words[:3] == ["python", "-m", "pytest"]:
    assert words[-1] == "tests"  # the command CI runs: this suite itself
    with open(os.path.join(ROOT, ".ci", "run")) as f:
      assert command in f.read()
    return
  raise AssertionError(f"README shows a command no test runs: {command!r}")


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_readme_python_runs(index, tmp_path):
  code = _blocks("python")[index]
  code = code.replace("get_config()", 'get_config("smoke")').replace('"/tmp/', f'"{tmp_path}/')
  proc = subprocess.run(
    [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600
  )
  assert proc.returncode == 0, f"{code}\n{proc.stderr[-3000:]}"
