"""``python -m experiments.finetune``: the summary contract, sources from launcher runs, errors."""

import json
import os
import subprocess
import sys

import pytest

from experiments.configs import default, finetune_digits, finetune_synthetic
from mtl_jax import build, experiment
from mtl_jax.transfer import source as source_lib
from mtl_jax.transfer import study

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "experiments/configs/finetune_digits.py"
ARMS = ("scratch", "stl_pretrained", "mtl_pretrained", "linear_probe")


def _run(*args, timeout=600):
  argv = [sys.executable, "-m", "experiments.finetune", *args]
  return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
  wd = tmp_path_factory.mktemp("ft") / "wd"
  proc = _run(f"--config={CONFIG}:smoke", f"--workdir={wd}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(wd / "summary.json") as f:
    return wd, json.load(f), proc


def test_smoke_writes_the_contract(smoke):
  wd, summary, proc = smoke
  assert f"workdir: {wd}" in proc.stdout
  curve = summary["curve"]
  assert set(curve) == set(ARMS)
  top = str(summary["target"]["max_per_class"])
  for arm in ARMS:
    assert list(curve[arm]) == ["1", top]  # smoke: n = 1 and all, as strings
    for cell in curve[arm].values():
      assert set(cell) == {"mean", "ci95"}
      assert isinstance(cell["mean"], float) and len(cell["ci95"]) == 2
      assert cell["ci95"][0] <= cell["mean"] <= cell["ci95"][1]
  assert summary["n_per_class"][top]["all"] and not summary["n_per_class"]["1"]["all"]
  assert summary["n_per_class"]["1"]["examples"] == 10
  cv = summary["cv"]
  best = max(cv["table"], key=lambda r: r["val_mean"])
  assert cv["best"] == {k: best[k] for k in ("learning_rate", "layer_decay", "freeze_layers")}
  assert all(len(r["val_per_fold"]) == cv["folds"] for r in cv["table"])
  assert len(cv["test"]["per_seed"]) == summary["num_seeds"] == 2
  assert summary["practices"]["rows"][0]["delta_vs_reference"]["mean"] == 0.0
  for name in ("report.md", "adaptation_curve.png", "practices.png", "cv.png", "config.json"):
    assert os.path.getsize(wd / name) > 100, name
  for name in ("stl", "mtl"):
    assert (wd / "sources" / name / "summary.json").exists()
    assert (wd / "sources" / name / "checkpoints").is_dir()


def test_pretrained_source_is_a_launcher_style_workdir(smoke):
  wd, summary, _ = smoke
  src = source_lib.load_source(str(wd / "sources" / "mtl"))
  assert src.num_seeds == 2 and src.num_tasks == 3 and src.config["model"] == "hard_sharing"
  assert tuple(src.config["source_tasks"]) == ("rot15", "rot0", "rot45")
  assert summary["sources"]["mtl_pretrained"]["tasks"] == ["rot15", "rot0", "rot45"]


def test_experiments_train_workdir_is_a_source(tmp_path):
  config = default.get_config("smoke")
  config.baseline, config.num_steps, config.num_seeds = "", 5, 1
  config.taskset_kwargs.angles = (0, 15, 30, 45)
  experiment.train_and_evaluate(config, str(tmp_path / "run"), progress=False)
  src = source_lib.load_source(str(tmp_path / "run"))
  assert src.num_seeds == 1 and src.num_tasks == 4 and src.step == 5
  ft = finetune_digits.get_config("smoke")
  ft.transfer.mtl_source_workdir = str(tmp_path / "run")
  target = study.source_tasksets(ft, build.build_taskset(ft))["target"]
  assert target.names == ["rot30"]
  assert study._checked(src, ft, target) is src  # fits the target model


def _bad(tmp_path, *flags):
  wd = tmp_path / "wd"
  proc = _run(f"--config={CONFIG}:smoke", f"--workdir={wd}", *flags, timeout=300)
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
  assert not wd.exists()
  return lines[0]


@pytest.mark.parametrize(
  "flag, message",
  [
    ("--config.transfer.haed=keep", "unknown config field 'transfer.haed'"),
    ("--config.transfer.head=bogus", "transfer.head must be one of reinit, keep"),
    ("--config.transfer.layer_decay=-0.5", "transfer.layer_decay must be a finite number > 0"),
    ("--config.transfer.target_task=rot99", "transfer.target_task = 'rot99' is not a task"),
    ("--config.cv.freeze_layers=(0,5)", "cv.freeze_layers = 5 but the source model's trunk has 2"),
    ("--config.transfer.mtl_source_workdir=/nonexistent/run", "'/nonexistent/run'"),
  ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, flag, message):
  assert message in _bad(tmp_path, flag)


def test_source_task_sets_hold_the_target_out():
  config = finetune_digits.get_config("smoke")
  sets = study.source_tasksets(config, build.build_taskset(config))
  assert [sets[k].names for k in ("target", "stl", "mtl")] == [
    ["rot30"],
    ["rot15"],
    ["rot15", "rot0", "rot45"],
  ]
  syn = finetune_synthetic.get_config("smoke,unrelated")
  sets = study.source_tasksets(syn, build.build_taskset(syn))
  assert sets["target"].names == ["task_1"] and sets["mtl"].names == ["task_0", "task_4"]
  syn.transfer.mtl_source_tasks = ("task_4", "task_1")
  with pytest.raises(ValueError, match="must not contain the target"):
    study.source_tasksets(syn, build.build_taskset(syn))
