"""examples/quickstart.ipynb runs top to bottom on a real Jupyter kernel and shows what it promises."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.conftest import ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"


def _outputs(cell) -> dict[str, str]:
    """Every output of a cell by MIME type (stream text under 'stream'), joined."""
    found: dict[str, str] = {}
    for output in cell.outputs:
        if output.output_type == "stream":
            found["stream"] = found.get("stream", "") + output.text
        for mime, value in output.get("data", {}).items():
            found[mime] = found.get(mime, "") + (value if isinstance(value, str) else "".join(value))
    return found


def test_the_committed_notebook_has_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")


@pytest.mark.torch
@pytest.mark.data
def test_quickstart_notebook_runs_on_a_real_kernel(tmp_path, monkeypatch, fashion_mnist_dir):
    (tmp_path / "examples").mkdir()
    (tmp_path / "specs").mkdir()
    shutil.copy(NOTEBOOK, tmp_path / "examples" / NOTEBOOK.name)
    shutil.copy(ROOT / "specs" / "fashion_mnist_cnn.yaml", tmp_path / "specs")
    # The kernel is a new process: make it import this checkout of nnspec.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(tmp_path / "examples" / NOTEBOOK.name, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=240, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path / "examples")}})
    client.execute()

    code = [_outputs(c) for c in notebook.cells if c.cell_type == "code"]
    check, summary, diagram, overrides, training, curves, inspected = code
    assert check["text/plain"] == "[]"
    assert "<table" in summary["text/html"] and "Total params: 25,034" in summary["text/html"]
    assert "conv2d_2" in summary["text/html"]
    assert "<svg" in diagram["image/svg+xml"] and "max_pooling2d" in diagram["image/svg+xml"]
    assert "25,034 -> 48,106 parameters" in overrides["stream"]
    assert "--set encoder[4].filters=many" in overrides["text/plain"]
    assert 0.3 < float(training["text/plain"]) <= 1.0  # one epoch on 2,000 images already beats chance (0.1)
    assert "epoch 1/1" in training["stream"]
    assert curves["image/png"] and inspected["image/png"]
    assert "misclassified" in inspected["stream"] and "filters" in inspected["stream"]
    runs = list((tmp_path / "examples" / "runs" / "fashion_mnist_cnn_model").iterdir())
    assert len(runs) == 1 and (runs[0] / "weights" / "best.safetensors").exists()
