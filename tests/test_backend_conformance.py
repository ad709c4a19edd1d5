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


_ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
_SPECS = sorted((_ROOT / "specs").glob("*.yaml")) + sorted((_ROOT / "examples").glob("*.yaml"))


@pytest.mark.keras
@pytest.mark.parametrize("path", _SPECS, ids=[p.name for p in _SPECS])
def test_keras_summary_shows_nnspecs_names_shapes_and_counts(path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # rich wraps cells at the terminal width otherwise
    from nnspec.backends import keras as kb
    from nnspec.layers.base import format_shape
    from nnspec.report.summary import summarize

    spec = nnspec.load(path)
    model = kb.build(spec)
    lines: list[str] = []
    model.summary(line_length=250, print_fn=lambda text, **_: lines.extend(text.splitlines()))
    assert f'Model: "{spec.name}"' in "\n".join(lines)
    s = summarize(spec)
    for row in s.rows:
        match = [line for line in lines if f" {row.name} ({row.keras_class})" in line]
        assert match, f"no Keras summary line for {row.name} ({row.keras_class})"
        # Keras prints a symbolic dimension (seq) as None
        shape = tuple(d if isinstance(d, int) else None for d in row.output_shape)
        assert format_shape(shape) in match[0], (row.name, match[0])
        assert f" {row.params:,} " in match[0], (row.name, match[0])
    text = "\n".join(lines)
    assert f"Total params: {s.total_params:,} " in text
    assert f"Trainable params: {s.trainable_params:,} " in text
    assert f"Non-trainable params: {s.non_trainable_params:,} " in text
