"""docs/notebook.ipynb runs top to bottom in a real Jupyter kernel (nbclient, ipykernel) on
the real MNIST, as a user runs it: two runs trained, compared, and a picture of predictions."""

from __future__ import annotations

import ast
import json
import os

import nbformat
import pytest
from helpers import REPO
from nbclient import NotebookClient

pytestmark = pytest.mark.slow


def test_the_notebook_trains_compares_and_shows_predictions(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTX_DATA_DIR", str(mnist_dir))
    notebook = nbformat.read(REPO / "docs" / "notebook.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    results = [o["data"]["text/plain"] for o in outputs if o.output_type == "execute_result"]
    accuracy = ast.literal_eval(results[0])  # {"lr 1e-3": 0.97.., "lr 1e-1": ...}
    assert accuracy["lr 1e-3"] > 0.93 and accuracy["lr 1e-1"] < accuracy["lr 1e-3"]
    # The runs and the report are in the kernel's folder, as the command line writes them.
    runs = sorted((tmp_path / "outputs").glob("20*/*/metrics.json"))
    assert len(runs) == 2
    assert sorted(json.loads(p.read_text())["test/acc"] for p in runs) == sorted(accuracy.values())
    (report,) = (tmp_path / "outputs" / "comparisons").glob("*/comparison.md")
    assert "optimizer.lr" in report.read_text()
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pictures) == 2  # the report's curves, and the predictions
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    right = int(printed.split(" of 16 right")[0].split()[-1])
    assert right >= 14
    assert os.environ["MNISTX_DATA_DIR"] == str(mnist_dir)
