"""Shared fixtures. Backend tests are marked and skip cleanly where a framework is absent;
.ci/run installs both frameworks and the data set, so CI runs everything."""

from __future__ import annotations

import importlib.util
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
FASHION_DIRS = [
    pathlib.Path("/usr/share/datasets/fashion-mnist"),
    pathlib.Path.home() / ".keras" / "datasets" / "fashion-mnist",
]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# the framework under Keras for this test process (KERAS_BACKEND=jax|torch runs the Keras tests there)
KERAS_FRAMEWORK = os.environ["KERAS_BACKEND"]


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def pytest_collection_modifyitems(config, items):
    skip_torch = pytest.mark.skip(reason="torch is not installed")
    skip_keras = pytest.mark.skip(reason=f"keras or {KERAS_FRAMEWORK} (KERAS_BACKEND) is not installed")
    for item in items:
        if "torch" in item.keywords and not has("torch"):
            item.add_marker(skip_torch)
        if "keras" in item.keywords and not (has("keras") and has(KERAS_FRAMEWORK)):
            item.add_marker(skip_keras)


@pytest.fixture
def write_spec(tmp_path):
    """Write YAML text to a spec file and return its path."""

    def _write(text: str, name: str = "spec.yaml") -> str:
        p = tmp_path / name
        p.write_text(text)
        return str(p)

    return _write


@pytest.fixture(scope="session")
def fashion_mnist_dir():
    for d in FASHION_DIRS:
        if (d / "train-images-idx3-ubyte.gz").exists() or (d / "train-images-idx3-ubyte").exists():
            return d
    pytest.skip("Fashion-MNIST files are not installed (apt-get install dataset-fashion-mnist)")
