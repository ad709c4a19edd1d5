"""Export a torch-built spec: ONNX (checked with onnxruntime when it is installed) or TorchScript."""

from __future__ import annotations

import io

import numpy as np
import torch

from nnspec.backends.export import VERIFY_TOLERANCE, ExportMismatch, ExportResult
from nnspec.fileio import atomic_write


def export(spec, model, format: str, output: str, inputs: list[np.ndarray], verify: bool = True) -> ExportResult:
    model = model.eval()
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

    heads = list(spec.graph.heads)
    input_names = list(spec.graph.inputs)
    output_names = heads if len(heads) > 1 else ["output"]
    dynamic = {n: {0: "batch"} for n in input_names + output_names}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
        torch.onnx.export(model, args, buffer, input_names=input_names,  # type: ignore[arg-type]  # a buffer works output_names=output_names,
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
                raise ExportMismatch(f"the ONNX graph disagrees with the torch model (max abs difference {diff:.2e}); "
                                   f"{output} was not written")
    atomic_write(output, data)
    return ExportResult(output, "onnx", diff)
