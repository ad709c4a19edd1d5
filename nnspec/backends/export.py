"""Export a spec with its weights: ONNX (via torch), TorchScript, or a ``.keras`` file. Writes are atomic.

Variable dimensions (``null`` or symbolic names such as ``seq``) need a size for tracing: pass
``dims={"seq": 100}``. The batch dimension stays dynamic in ONNX. Recurrent layers are unrolled over
the traced length, so a sequence length is fixed in the exported ONNX/TorchScript graph.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass

import numpy as np

from nnspec.diagnostics import Diagnostic
from nnspec.errors import SpecError
from nnspec.fileio import atomic_write

FORMATS = ("onnx", "torchscript", "keras")
VERIFY_TOLERANCE = 1e-4


@dataclass
class ExportResult:
    path: str
    format: str
    max_abs_diff: float | None = None  # ONNX: onnxruntime vs torch on a random batch, when onnxruntime is there


def example_inputs(spec, dims: dict[str, int] | None = None, batch: int = 2, seed: int = 0) -> list[np.ndarray]:
    """A random batch per graph input, with variable dimensions sized by ``dims``."""
    dims = dict(dims or {})
    rng = np.random.default_rng(seed)
    users = spec.graph.consumers()
    out = []
    for name in spec.graph.inputs:
        node = spec.graph.nodes[name]
        shape = []
        for i, d in enumerate(node.attrs["shape"]):
            if isinstance(d, int) and not isinstance(d, bool):
                shape.append(d)
            elif isinstance(d, str) and d in dims:
                shape.append(int(dims[d]))
            else:
                label = d if isinstance(d, str) else f"{name}[{i}]"
                raise SpecError(Diagnostic(
                    file=spec.path, code="value", path=f"inputs.{name}.shape",
                    message=f"input `{name}` has a variable dimension `{label}`; give its size for export",
                    hint=f"e.g. --dim {label}=32 (API: dims={{{label!r}: 32}})",
                ))
        dtype = node.attrs.get("dtype", "float32")
        if dtype.startswith("int") or dtype == "uint8":
            high = min((spec.graph.nodes[u].attrs.get("input_dim", 2) for u in users[name]), default=2)
            out.append(rng.integers(0, high, (batch, *shape)).astype(dtype))
        else:
            out.append(rng.standard_normal((batch, *shape)).astype(np.float32))
    return out


def _torch_model(spec, weights_path):
    from nnspec.backends import torch as tb

    model = tb.build(spec, seed=0)
    if weights_path:
        from nnspec.backends.weights import load_weights

        load_weights(model, spec, weights_path)
    return model.eval()


def export(spec, output, format: str, weights: str | None = None, dims: dict[str, int] | None = None,
           verify: bool = True) -> ExportResult:
    """Build ``spec`` with ``weights`` (a neutral weights file; fresh seed-0 weights without one) and export it."""
    from nnspec.api import load

    spec = load(spec)
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    output = os.fspath(output)
    if format == "keras":
        return _export_keras(spec, output, weights)
    import torch

    model = _torch_model(spec, weights)
    inputs = example_inputs(spec, dims)
    args = tuple(torch.from_numpy(x) for x in inputs)
    if format == "torchscript":
        with torch.no_grad():
            traced = torch.jit.trace(model, args, strict=False, check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
        atomic_write(output, buffer.getvalue())
        return ExportResult(output, format)
    return _export_onnx(spec, model, args, inputs, output, verify)


def _export_onnx(spec, model, args, inputs, output, verify) -> ExportResult:
    import warnings

    import torch

    heads = list(spec.graph.heads)
    input_names = list(spec.graph.inputs)
    output_names = heads if len(heads) > 1 else ["output"]
    dynamic = {n: {0: "batch"} for n in input_names + output_names}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
        torch.onnx.export(model, args, buffer, input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic, dynamo=False, opset_version=17)
    data = buffer.getvalue()
    diff = None
    if verify:
        try:
            import onnxruntime as ort
        except ImportError:
            ort = None
        if ort is not None:
            session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
            got = session.run(None, {n: x for n, x in zip(input_names, inputs, strict=True)})
            with torch.no_grad():
                want = model(*args)
            want = [want[h] for h in heads] if isinstance(want, dict) else [want]
            diff = max(float(np.max(np.abs(g - w.numpy()))) for g, w in zip(got, want, strict=True))
            if not diff <= VERIFY_TOLERANCE:
                raise RuntimeError(f"the ONNX graph disagrees with the torch model (max abs difference {diff:.2e}); "
                                   f"{output} was not written")
    atomic_write(output, data)
    return ExportResult(output, "onnx", diff)


def _export_keras(spec, output: str, weights) -> ExportResult:
    from nnspec.backends import keras as kb

    if not output.endswith(".keras"):
        raise ValueError(f"a Keras export must end in .keras (got {output})")
    model = kb.build(spec, seed=0)
    if weights:
        from nnspec.backends.weights import load_weights

        load_weights(model, spec, weights)
    folder = os.path.dirname(os.path.abspath(output))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".keras", dir=folder)
    os.close(fd)
    try:
        model.save(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return ExportResult(output, "keras")
