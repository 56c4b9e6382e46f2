"""Executes every notebook under notebooks/ (tiny sizes) so they never rot, and checks that
each opens in Colab as it is: a badge on top, an install cell first, outputs stripped."""

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((pathlib.Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
COLAB = "https://colab.research.google.com/github/<your-org>/mtl_jax/blob/main/notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path):
  # mtl_jax is importable here, so the install cell does nothing (no network).
  nb = nbformat.read(path, as_version=4)
  NotebookClient(
    nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
  ).execute()
  for cell in nb.cells:
    for out in cell.get("outputs", []):
      assert out.get("output_type") != "error", out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_in_colab(path):
  nb = nbformat.read(path, as_version=4)
  nbformat.validate(nb)
  assert nb.cells[0].cell_type == "markdown", "the first cell is the Open in Colab badge"
  assert COLAB + path.name in nb.cells[0].source
  code = [c for c in nb.cells if c.cell_type == "code"]
  # The first code cell installs mtl_jax only when it is not importable.
  assert 'find_spec("mtl_jax") is None' in code[0].source
  assert "MTL_JAX_PIP" in code[0].source
  for cell in code:
    assert not cell.outputs and cell.execution_count is None, "strip the notebook's outputs"
