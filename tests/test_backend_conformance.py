"""Every catalog layer type has a builder in every backend; refusals are located `backend` errors;
importing nnspec or running check/summary imports no framework."""

from __future__ import annotations

import subprocess
import sys

import pytest

import nnspec
from nnspec.layers.registry import all_types


def _catalog() -> set[str]:
    return set(all_types()) - {"input"}


@pytest.mark.torch
def test_every_catalog_type_has_a_torch_builder():
    from nnspec.backends.torch import BUILDERS

    missing = sorted(_catalog() - set(BUILDERS))
    assert not missing, f"layer types without a torch builder: {missing}"
    assert not sorted(set(BUILDERS) - _catalog()), "torch builders for types the catalog does not have"


@pytest.mark.keras
def test_every_catalog_type_has_a_keras_builder():
    from nnspec.backends.keras import BUILDERS

    missing = sorted(_catalog() - set(BUILDERS))
    assert not missing, f"layer types without a keras builder: {missing}"
    assert not sorted(set(BUILDERS) - _catalog()), "keras builders for types the catalog does not have"


@pytest.mark.torch
def test_torch_refuses_embedding_mask_zero_with_a_located_backend_error(write_spec):
    path = write_spec(
        "name: m\ninputs:\n  t: {shape: [5], dtype: int32}\nencoder:\n"
        "  - embedding: {input_dim: 10, output_dim: 4, mask_zero: true}\n  - lstm: {units: 3}\n"
    )
    with pytest.raises(nnspec.SpecError) as info:
        nnspec.build(path, backend="torch")
    diag = info.value.diagnostics[0]
    assert diag.code == "backend"
    assert diag.line == 5 and "mask_zero" in diag.message and diag.hint


def test_importing_nnspec_and_checking_a_spec_loads_no_framework(tmp_path):
    code = (
        "import sys, io, nnspec\n"
        "from nnspec.cli.main import main\n"
        "assert main(['summary', 'specs/fashion_mnist_cnn.yaml'], io.StringIO(), io.StringIO()) == 0\n"
        "import nnspec.backends, nnspec.backends.common, nnspec.backends.weights, nnspec.backends.compare\n"
        "import nnspec.backends.export, nnspec.cli.export\n"
        "bad = [m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    import pathlib

    root = pathlib.Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
