"""The MMoE paper's synthetic data (``mmoe_paper``) and its experiment script.

The generator: cos(w_1, w_2) is the asked correlation, both tasks see the same x, the
labels are the paper's formula, shapes and determinism, and the draws are shared across
correlations. The script (``experiments.mmoe_synthetic``) at ``--smoke``: results.json
with the outside contract's schema, report.md and the PNG; bad flags are one line.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mtl_jax import data as data_lib
from mtl_jax.data.mmoe_paper import mmoe_paper, paper_problem

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("p", [-0.5, 0.0, 0.5, 0.9, 1.0])
def test_weight_cosine_is_the_correlation(p):
  prob = paper_problem(p, dim=100, scale=2.5, rng=np.random.default_rng(3))
  w1, w2 = prob.w
  cos = w1 @ w2 / (np.linalg.norm(w1) * np.linalg.norm(w2))
  np.testing.assert_allclose(cos, p, atol=1e-12)
  np.testing.assert_allclose(np.linalg.norm(prob.w, axis=1), [2.5, 2.5], rtol=1e-12)


def test_shapes_shared_inputs_and_registry():
  ts = data_lib.get_taskset("mmoe_paper", correlation=0.5, dim=7, n_train=30, n_test=20)
  assert ts.shared_inputs and ts.names == ["task_0", "task_1"]
  assert ts.x_train.shape == (2, 30, 7) and ts.y_train.shape == (2, 30, 1)
  assert ts.x_test.shape == (2, 20, 7) and list(ts.n_train) == [30, 30]
  np.testing.assert_array_equal(ts.x_train[0], ts.x_train[1])
  np.testing.assert_array_equal(ts.x_test[0], ts.x_test[1])


def test_labels_follow_the_paper_formula():
  ts = mmoe_paper(0.3, dim=10, num_sines=4, noise=0.0, n_train=50, n_test=5, seed=1)
  prob = paper_problem(0.3, dim=10, num_sines=4, noise=0.0, rng=np.random.default_rng(1))
  x = ts.x_train[0].astype(np.float64)
  for i in range(2):
    s = x @ prob.w[i]
    expect = s + np.sin(prob.alpha[:, None] * s[None] + prob.beta[:, None]).sum(0)
    got = ts.unstandardize(ts.y_train[i], i)[:, 0]
    np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-4)


def test_noise_level_and_determinism():
  a = mmoe_paper(0.5, n_train=4000, n_test=10, seed=5, standardize_labels=False)
  b = mmoe_paper(0.5, n_train=4000, n_test=10, seed=5, standardize_labels=False)
  c = mmoe_paper(0.5, n_train=4000, n_test=10, seed=6, standardize_labels=False)
  np.testing.assert_array_equal(a.x_train, b.x_train)
  np.testing.assert_array_equal(a.y_test, b.y_test)
  assert not np.array_equal(a.x_train, c.x_train)
  # Residual after the noiseless labels: ε with standard deviation 0.1 (variance 0.01).
  clean = mmoe_paper(0.5, noise=0.0, n_train=4000, n_test=10, seed=5, standardize_labels=False)
  np.testing.assert_allclose(np.std(a.y_train - clean.y_train), 0.1, rtol=0.05)


def test_correlations_share_inputs_and_task_0():
  lo = mmoe_paper(0.2, n_train=100, n_test=10, seed=2)
  hi = mmoe_paper(1.0, n_train=100, n_test=10, seed=2, standardize_labels=False)
  lo_raw = mmoe_paper(0.2, n_train=100, n_test=10, seed=2, standardize_labels=False)
  np.testing.assert_array_equal(lo.x_train, hi.x_train)
  np.testing.assert_array_equal(lo_raw.y_train[0], hi.y_train[0])
  assert np.std(hi.y_train[0] - hi.y_train[1]) < 0.2  # p = 1: only ε (2 × N(0, 0.01)) differs


@pytest.mark.parametrize("kwargs", [{"correlation": 1.5}, {"dim": 1}, {"n_train": 0}])
def test_bad_arguments(kwargs):
  with pytest.raises(ValueError):
    mmoe_paper(**kwargs)


def _script(*args):
  cmd = [sys.executable, "-m", "experiments.mmoe_synthetic", *args]
  return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_smoke_writes_the_contract(tmp_path):
  proc = _script("--smoke", f"--workdir={tmp_path}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads((tmp_path / "results.json").read_text())
  rows = results["rows"]
  assert {(r["model"], r["correlation"]) for r in rows} == {
    ("shared_bottom", 0.5),
    ("omoe", 0.5),
    ("mmoe", 0.5),
  }
  for r in rows:
    assert r["model"] in ("shared_bottom", "omoe", "mmoe")
    assert isinstance(r["correlation"], float) and r["regime"] == "fixed"
    mse = r["test_mse_per_seed"]
    assert isinstance(mse, list) and len(mse) == 2  # --smoke: 2 seeds
    assert all(isinstance(v, float) and np.isfinite(v) and v > 0 for v in mse)
  report = (tmp_path / "report.md").read_text()
  assert "| shared_bottom |" in report and "| mmoe |" in report
  png = (tmp_path / "test_mse.png").read_bytes()
  assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_fresh_regime_has_steps_times_batch_rows(tmp_path):
  proc = _script("--smoke", "--regime=fresh", "--seeds=1", "--models=mmoe", f"--workdir={tmp_path}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  (row,) = json.loads((tmp_path / "results.json").read_text())["rows"]
  assert row["regime"] == "fresh" and row["n_train"] == 20 * 32  # smoke: 20 steps of 32
  assert len(row["test_mse_per_seed"]) == 1


@pytest.mark.parametrize(
  "args,message",
  [
    (["--regime=foo"], "--regime must be one of fixed, fresh, got 'foo'"),
    (["--correlations=0.5,2"], "--correlations: 2.0 is outside [-1, 1]"),
    (["--models=nope"], "--models: unknown ['nope']"),
    (["--seeds=0"], "--seeds must be >= 1, got 0"),
  ],
)
def test_bad_flags_are_one_line(args, message, tmp_path):
  proc = _script("--smoke", f"--workdir={tmp_path / 'wd'}", *args)
  assert proc.returncode == 2
  lines = [line for line in proc.stderr.splitlines() if line.strip()]
  assert lines[-1].startswith("error: ") and message in lines[-1], proc.stderr
  assert not (tmp_path / "wd").exists()
