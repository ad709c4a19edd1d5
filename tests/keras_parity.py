"""The Keras parity suite on one Keras engine (tensorflow, jax or torch), run as its own process.

Keras fixes its engine at its first import, so each engine needs a fresh process:
``python tests/keras_parity.py jax`` prints one JSON report, which ``test_keras_engines.py`` checks.
Against nnspec's torch backend (the reference, as in ``test_backend_parity.py``) it measures:

- ``cases``: for every layer case of ``test_backend_parity.CASES`` and every shipped spec, whether
  Keras's per-layer and total counts and every layer's output shape equal nnspec's, whether weights
  read back unchanged, and the largest difference of the outputs with the same weights;
- ``sgd_step``: the largest difference of the weights after one SGD step on the same batch
  (regularisers, frozen layers and batch norm included: ``test_backend_semantics.TRAIN_SPEC``);
- ``training``: a two-epoch Fashion-MNIST run of ``test_train.CNN`` through ``nnspec train``
  (``--limit 2000``): its test accuracy, the engine recorded in the run, seconds;
- ``grad_cam``: the largest difference between Grad-CAM maps of that run on this engine and on torch.

Options: ``--no-training`` skips the last two (no data set needed), ``--only KEY`` (repeatable)
restricts the cases.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _forward(model, inputs: list[np.ndarray], engine: str):
    """Inference outputs as numpy. On JAX one compiled call is much faster than op-by-op dispatch."""
    import backend_support as bs

    if engine == "jax":
        out = model.predict_on_batch(inputs[0] if len(inputs) == 1 else list(inputs))
        return {k: np.asarray(v) for k, v in out.items()} if isinstance(out, dict) else np.asarray(out)
    return bs.run_keras(model, inputs)


def case_report(spec, kb, tb, engine: str) -> dict:
    """Counts, shapes, weight round trip and outputs of one spec on Keras vs torch, same weights."""
    import backend_support as bs

    keras_model = kb.build(spec, seed=0)
    torch_model = tb.build(spec, seed=0)
    weights = bs.random_weights(spec)
    kb.set_weights(keras_model, spec, weights)
    read_back = kb.get_weights(keras_model, spec)
    tb.set_weights(torch_model, spec, read_back)
    inputs = bs.random_inputs(spec)
    layers = [n for n, node in spec.graph.nodes.items() if not node.is_input]
    counts = kb.layer_counts(keras_model, spec)
    expected = bs.nnspec_counts(spec)
    shapes = bs.keras_layer_shapes(keras_model, spec)
    return {
        "counts_equal": all(counts[n] == expected[n] for n in layers)
        and int(keras_model.count_params()) == spec.total_params,
        "shapes_equal": all(shapes[n] == bs.expected_shape(spec, n) for n in layers),
        "weights_round_trip": all(np.array_equal(read_back[k], np.asarray(v, np.float32)) for k, v in weights.items()),
        "max_abs_diff": bs.max_diff(bs.run_torch(torch_model, inputs), _forward(keras_model, inputs, engine)),
    }


def sgd_step_report(kb, tb) -> dict:
    """One SGD step (mse + regularisation, training mode) in both frameworks from the same weights."""
    import keras
    import torch
    from test_backend_semantics import TRAIN_SPEC

    import nnspec

    spec = nnspec.load("train_step.yaml", text=TRAIN_SPEC)
    tm, km = tb.build(spec, seed=0), kb.build(spec, seed=0)
    before = tb.get_weights(tm, spec)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 6)).astype(np.float32)
    y = rng.standard_normal((8, 3)).astype(np.float32)
    tm.train()
    opt = torch.optim.SGD([p for p in tm.parameters() if p.requires_grad], lr=0.1)
    loss = torch.mean((tm(torch.from_numpy(x)) - torch.from_numpy(y)) ** 2) + tm.regularization_loss()
    opt.zero_grad()
    loss.backward()
    opt.step()
    after_torch = tb.get_weights(tm, spec)
    km.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    km.train_on_batch(x, y)
    after_keras = kb.get_weights(km, spec)
    frozen = [k for k in before if k.startswith(("frozen/", "frozen_bn/"))]
    return {
        "max_abs_diff": max(float(np.abs(after_torch[k] - after_keras[k]).max()) for k in before),
        "frozen_unchanged": all(np.array_equal(after_keras[k], before[k]) for k in frozen),
        "trained": all(not np.array_equal(after_keras[k], before[k]) for k in before
                       if k not in frozen and not k.endswith("moving_variance")),
    }


def training_report(engine: str, out: str) -> tuple[dict, str]:
    """``nnspec train`` of a small CNN for two epochs on 2000 Fashion-MNIST examples on this engine."""
    from test_train import CNN

    import nnspec
    from nnspec.training.run import train

    path = pathlib.Path(out) / "cnn.yaml"
    path.write_text(CNN)
    started = time.perf_counter()
    result = train(nnspec.load(str(path)), backend="keras", keras_backend=engine, limit=2000, out=out,
                   progress=False)
    settings = json.loads((pathlib.Path(result.run_dir) / "settings.json").read_text())
    return {
        "test_accuracy": result.metrics["test_accuracy"],
        "engine_recorded": settings["versions"].get("keras_backend"),
        "seconds": round(time.perf_counter() - started, 1),
    }, result.run_dir


def grad_cam_report(run_dir: str) -> dict:
    """Grad-CAM of the trained run on this engine against nnspec's torch backend, same weights."""
    from nnspec.inspect.model import open_runner
    from nnspec.inspect.run import open_run

    run = open_run(run_dir)
    layer = [n for n, node in run.spec.graph.nodes.items() if node.type == "conv2d"][-1]
    x = np.random.default_rng(0).uniform(0, 1, (4, *run.input_shape)).astype(np.float32)
    classes = np.array([0, 3, 7, 9])
    cams, raw = open_runner(run, "keras").grad_cam(x, layer, classes)
    torch_cams, torch_raw = open_runner(run, "torch").grad_cam(x, layer, classes)
    return {"max_abs_diff": float(np.abs(cams - torch_cams).max()),
            "raw_max_abs_diff": float(np.abs(raw - torch_raw).max()), "shape": list(cams.shape)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("engine", choices=["tensorflow", "jax", "torch"])
    parser.add_argument("--no-training", action="store_true")
    parser.add_argument("--only", action="append", default=None, metavar="KEY")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    import nnspec
    from nnspec.backends import get_backend

    kb = get_backend("keras", args.engine)  # chooses Keras's engine before keras is imported
    tb = get_backend("torch")
    import keras
    from test_backend_parity import CASES, SPEC_FILES

    report: dict = {"engine": keras.backend.backend(), "keras": keras.__version__, "cases": {}}
    todo = [(key, kind, lambda text=text, key=key: nnspec.load(f"{key}.yaml", text=text)) for key, kind, text in CASES]
    todo += [(p.name, "spec", lambda p=p: nnspec.load(str(p))) for p in SPEC_FILES]
    for key, kind, load in todo:
        if args.only and key not in args.only:
            continue
        try:
            report["cases"][key] = {"type": kind, **case_report(load(), kb, tb, args.engine)}
        except Exception as exc:  # one broken case is reported, not fatal to the others
            report["cases"][key] = {"type": kind, "error": f"{type(exc).__name__}: {exc}"[:500]}
    report["sgd_step"] = sgd_step_report(kb, tb)
    if not args.no_training:
        with tempfile.TemporaryDirectory() as out:
            report["training"], run_dir = training_report(args.engine, out)
            report["grad_cam"] = grad_cam_report(run_dir)
    report["seconds"] = round(time.perf_counter() - started, 1)
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
