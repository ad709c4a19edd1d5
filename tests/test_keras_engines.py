"""Keras parity on every Keras engine: JAX and PyTorch here, TensorFlow in this process's own tests.

Keras fixes its engine when first imported, so each engine runs ``tests/keras_parity.py`` in its own
process (started together, read as JSON): counts, shapes and outputs within 1e-5 of nnspec's torch
backend with the same weights for every layer case and shipped spec, one SGD step giving the same
new weights, a two-epoch Fashion-MNIST run in the accuracy band of ``test_train``, and Grad-CAM.
``NNSPEC_KERAS_ENGINES=tensorflow,jax,torch`` chooses the engines; ``NNSPEC_KERAS_PARITY_REPORT=path``
writes the reports as JSON.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

from nnspec.errors import BackendMissing

HERE = pathlib.Path(__file__).resolve().parent
ENGINES = [e for e in os.environ.get("NNSPEC_KERAS_ENGINES", "jax,torch").split(",") if e]
TOLERANCE = 1e-5
TIMEOUT = 600

pytestmark = [pytest.mark.keras, pytest.mark.torch]


def _installed(engine: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("keras", "torch", engine))


@pytest.fixture(scope="module")
def reports(request) -> dict[str, dict]:
    """One parity process per installed engine, all started at once; engine -> its JSON report."""
    from conftest import FASHION_DIRS

    has_data = any((d / "train-images-idx3-ubyte.gz").exists() or (d / "train-images-idx3-ubyte").exists()
                   for d in FASHION_DIRS)
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    # the engines run side by side: one thread each keeps torch from spinning against the other process
    env.update(TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu", OMP_NUM_THREADS="1")
    procs = {}
    for engine in ENGINES:
        if _installed(engine):
            cmd = [sys.executable, str(HERE / "keras_parity.py"), engine, *([] if has_data else ["--no-training"])]
            procs[engine] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                             cwd=HERE.parent)
    out: dict[str, dict] = {}
    for engine, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, f"keras_parity.py {engine} failed:\n{stderr[-3000:]}"
        out[engine] = json.loads(stdout)
    target = os.environ.get("NNSPEC_KERAS_PARITY_REPORT")
    if target:
        pathlib.Path(target).write_text(json.dumps(out, indent=1))
    return out


def _report(reports: dict[str, dict], engine: str) -> dict:
    if engine not in reports:
        pytest.skip(f"Keras on {engine} needs {engine}, which is not installed here")
    assert reports[engine]["engine"] == engine
    return reports[engine]


@pytest.mark.parametrize("engine", ENGINES)
def test_every_layer_case_and_spec_matches_torch(reports, engine):
    cases = _report(reports, engine)["cases"]
    from test_backend_parity import CASES, SPEC_FILES

    assert set(cases) == {c[0] for c in CASES} | {p.name for p in SPEC_FILES}
    bad = {key: r for key, r in cases.items()
           if "error" in r or not (r["counts_equal"] and r["shapes_equal"] and r["weights_round_trip"])
           or not r["max_abs_diff"] <= TOLERANCE}
    assert not bad, f"Keras on {engine} differs from torch: {json.dumps(bad, indent=1)}"


@pytest.mark.parametrize("engine", ENGINES)
def test_one_sgd_step_gives_the_same_new_weights(reports, engine):
    step = _report(reports, engine)["sgd_step"]
    assert step["trained"] and step["frozen_unchanged"], step
    assert step["max_abs_diff"] <= TOLERANCE, step


@pytest.mark.parametrize("engine", ENGINES)
def test_a_short_training_reaches_the_accuracy_band_and_grad_cam_agrees(reports, engine):
    report = _report(reports, engine)
    if "training" not in report:
        pytest.skip("Fashion-MNIST files are not installed (apt-get install dataset-fashion-mnist)")
    training = report["training"]
    assert training["engine_recorded"] == engine, training
    assert training["test_accuracy"] > 0.5, training  # the band of test_train's CNN test; chance is 0.1
    cam = report["grad_cam"]
    assert cam["shape"] == [4, 28, 28] and cam["max_abs_diff"] <= 1e-3, cam


def test_a_second_engine_in_one_process_is_refused_with_the_way_out():
    import keras

    from nnspec.backends import get_backend

    running = keras.backend.backend()
    other = "jax" if running != "jax" else "torch"
    with pytest.raises(BackendMissing) as err:
        get_backend("keras", other)
    message = str(err.value)
    assert running in message and f"KERAS_BACKEND={other}" in message and "\n" not in message
    assert get_backend("keras").NAME == "keras"  # unasked, the running engine is kept


def test_a_missing_engine_is_one_line_with_the_install_command(monkeypatch):
    from nnspec.backends import base

    # a backend whose framework is installed (but not imported) and whose engine is not installed
    fake = base.BackendInfo(
        name="engine_probe", module="nnspec.no_such_module", requires="antigravity", install="-",
        variants=(base.Variant("absent", "nnspec_no_such_engine", "pip install nnspec-no-such-engine"),),
        variant_env="NNSPEC_TEST_ENGINE", default_variant="absent",
    )
    monkeypatch.setitem(base._REGISTRY.infos, fake.name, fake)
    monkeypatch.delenv("NNSPEC_TEST_ENGINE", raising=False)
    with pytest.raises(BackendMissing) as err:
        base.get_backend("engine_probe")
    message = str(err.value)
    assert "\n" not in message and message.endswith("pip install nnspec-no-such-engine"), message
    assert "NNSPEC_TEST_ENGINE" not in os.environ  # nothing was chosen for a framework that cannot run
