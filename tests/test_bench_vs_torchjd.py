"""Smoke tests of ``benchmarks/vs_torchjd.py`` at tiny size, with and without PyTorch."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "vs_torchjd.py"


def _run(*flags):
  out = subprocess.run(
    [sys.executable, str(SCRIPT), "--quick", *flags],
    capture_output=True,
    text=True,
    check=True,
    timeout=300,
  )
  return [json.loads(line) for line in out.stdout.splitlines()], out.stderr


def test_jax_only_times_the_library_step():
  rows, table = _run("--jax_only", "--tasks=2", "--shared_tasks=0", "--methods=mean")
  assert [(r["impl"], r["method"]) for r in rows] == [("mtl_jax", "equal"), ("mtl_jax", "mean")]
  assert rows[0]["ratio_to_plain"] == 1.0
  assert all(r["median_step_ms"] > 0 and "peer" not in r for r in rows)
  assert "| per_task | 2 |" in table


@pytest.mark.skipif(
  importlib.util.find_spec("torchjd") is None, reason="torch/torchjd (the bench extra) absent"
)
def test_torch_peers_on_shared_inputs():
  rows, table = _run("--tasks=", "--shared_tasks=3", "--methods=mean")
  by = {(r["impl"], r["method"]): r for r in rows}
  assert set(by) == {
    ("mtl_jax", "equal"),
    ("mtl_jax", "mean"),
    ("torch", "sum"),
    ("torchjd", "mean"),
  }
  assert by["mtl_jax", "mean"]["peer"] == "torchjd/mean"
  jax_s, peer_s = (
    by["mtl_jax", "mean"]["median_step_ms"],
    by["torchjd", "mean"]["median_step_ms"],
  )
  assert by["mtl_jax", "mean"]["speedup_vs_peer"] == pytest.approx(peer_s / jax_s, rel=0.02)
  assert all(r["setting"] == "shared_inputs" and r["T"] == 3 for r in rows)
  assert "| shared_inputs | 3 |" in table
