"""Export a spec with its weights: ONNX (via torch), TorchScript, or a ``.keras`` file. Writes are atomic.

Variable dimensions (``null`` or symbolic names such as ``seq``) need a size for tracing: pass
``dims={"seq": 100}``. The batch dimension stays dynamic in ONNX. Recurrent layers are unrolled over
the traced length, so a sequence length is fixed in the exported ONNX/TorchScript graph.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from nnspec.diagnostics import Diagnostic
from nnspec.errors import SpecError, UserError

VERIFY_TOLERANCE = 1e-4


class ExportMismatch(UserError):
    """The exported graph computes something else than the model it came from; nothing was written."""


def formats() -> dict[str, str]:
    """Export format -> the backend that writes it, from the backend registry."""
    from nnspec.backends.base import get_backend, infos

    out: dict[str, str] = {}
    for name, backend_info in infos().items():
        if backend_info.installed():
            for fmt in get_backend(name).EXPORT_FORMATS:
                out.setdefault(fmt, name)
    return out


KNOWN_FORMATS = {"onnx": "torch", "torchscript": "torch", "keras": "keras"}  # for help texts without imports


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


def export(spec, output, format: str, weights: str | None = None, dims: dict[str, int] | None = None,
           verify: bool = True) -> ExportResult:
    """Build ``spec`` with ``weights`` (a neutral weights file; fresh seed-0 weights without one) and export it.

    The backend that writes ``format`` comes from the registry (onnx and torchscript: torch; keras: keras).
    """
    from nnspec.backends.base import get_backend
    from nnspec.pipeline import load

    spec = load(spec)
    output = os.fspath(output)
    backend_name = KNOWN_FORMATS.get(format)
    if backend_name is None:
        backend_name = formats().get(format)
    if backend_name is None:
        raise UserError(f"unknown export format `{format}`; choose one of: {', '.join(KNOWN_FORMATS)}")
    if format == "keras" and not output.endswith(".keras"):
        raise UserError(f"a Keras export must end in .keras (got {output})")
    backend = get_backend(backend_name)
    inputs = example_inputs(spec, dims)
    model = backend.build(spec, seed=0)
    if weights:
        from nnspec.backends.weights import load_weights

        load_weights(model, spec, weights)
    return backend.export(spec, model, format, output, inputs, verify)
