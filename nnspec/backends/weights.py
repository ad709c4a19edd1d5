"""The backend-neutral weights file: safetensors keyed ``"<layer>/<param>"`` in the catalog's layout.

Reading and writing need only numpy (``safetensors.numpy``); no framework is imported. The file's
metadata records the format version, the spec's name and every parameter's shape; loading checks
the shapes against the spec and names every mismatch.
"""

from __future__ import annotations

import json
import os

import numpy as np

from nnspec.errors import UserError
from nnspec.fileio import atomic_write

FORMAT = "nnspec-weights"
FORMAT_VERSION = "1"


class WeightsFileError(UserError, ValueError):
    """A weights file that cannot be read or does not fit the spec."""


def _need_safetensors() -> None:
    """Weights files are safetensors: say which extra brings it when it is missing."""
    try:
        import safetensors.numpy  # noqa: F401
    except ImportError as exc:
        from nnspec.errors import BackendMissing

        raise BackendMissing("reading or writing weights needs safetensors, which is not installed: "
                             "pip install 'nnspec[torch]' (or 'nnspec[keras]'), or pip install safetensors") from exc


def write_weights(path, weights: dict[str, np.ndarray], metadata: dict | None = None) -> None:
    """Write ``weights`` atomically (temp file in the same folder, then ``os.replace``)."""
    _need_safetensors()
    from safetensors.numpy import save

    path = os.fspath(path)
    # reshape: np.ascontiguousarray turns a 0-d array (normalization's count) into shape (1,)
    tensors = {k: np.ascontiguousarray(np.asarray(v)).reshape(np.shape(v)) for k, v in weights.items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
            "shapes": json.dumps({k: list(v.shape) for k, v in tensors.items()}), "sha256": digest(tensors)}
    meta.update({k: str(v) for k, v in (metadata or {}).items()})
    atomic_write(path, save(tensors, metadata=meta))


def digest(tensors: dict[str, np.ndarray]) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes, in name order: a flipped bit shows."""
    import hashlib

    h = hashlib.sha256()
    for key in sorted(tensors):
        a = np.ascontiguousarray(tensors[key])
        h.update(f"{key}|{a.dtype.str}|{list(a.shape)}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def read_metadata(path) -> dict[str, str]:
    """The metadata of a weights file (format version, spec name, shapes)."""
    _need_safetensors()
    from safetensors import safe_open

    try:
        with safe_open(os.fspath(path), framework="numpy") as f:
            return dict(f.metadata() or {})
    except (OSError, ValueError) as exc:  # includes safetensors' SafetensorError
        raise WeightsFileError(f"{path}: not a readable weights file ({exc})") from exc
    except Exception as exc:  # safetensors raises its own error type for corrupt headers
        raise WeightsFileError(f"{path}: not a readable weights file ({exc})") from exc


def read_weights(path) -> dict[str, np.ndarray]:
    """All arrays of a weights file, ``{"<layer>/<param>": array}``."""
    _need_safetensors()
    from safetensors.numpy import load_file

    meta = read_metadata(path)
    if meta.get("format") != FORMAT:
        raise WeightsFileError(f"{path}: not an nnspec weights file (metadata format={meta.get('format')!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise WeightsFileError(
            f"{path}: weights format version {meta.get('format_version')!r}; this nnspec reads version {FORMAT_VERSION}"
        )
    try:
        tensors = load_file(os.fspath(path))
    except Exception as exc:
        raise WeightsFileError(f"{path}: cannot read the arrays ({exc})") from exc
    stored = meta.get("sha256")
    if stored is not None and stored != digest(tensors):  # files written before digests have none
        raise WeightsFileError(f"{path}: the weights do not match their recorded SHA-256 digest; the file is "
                               "damaged (restore it, or use the run's other weights file)")
    return tensors


def backend_of(model) -> str:
    """'torch' or 'keras', from the model's type (without importing either framework)."""
    for klass in type(model).__mro__:
        module = klass.__module__ or ""
        if module.startswith("torch"):
            return "torch"
        if module.startswith(("keras", "tf_keras", "tensorflow")):
            return "keras"
    raise TypeError(f"cannot tell the backend of a {type(model).__name__}; expected a torch.nn.Module or keras.Model")


def save_weights(model, spec, path) -> None:
    """Save a built model's weights in the neutral format (loads into either backend)."""
    from nnspec.backends import get_backend
    from nnspec.pipeline import load

    spec = load(spec)
    backend = backend_of(model)
    weights = get_backend(backend).get_weights(model, spec)
    write_weights(path, weights, {"spec": spec.name, "backend": backend})


def load_weights(model, spec, path) -> None:
    """Load a neutral weights file into a built model of either backend; shapes checked first."""
    from nnspec.backends import get_backend
    from nnspec.backends.common import weight_keys
    from nnspec.pipeline import load

    spec = load(spec)
    weights = read_weights(path)
    expected = weight_keys(spec)
    problems = []
    for key, shape in expected.items():
        if key not in weights:
            problems.append(f"{key} is missing")
        elif tuple(weights[key].shape) != shape:
            problems.append(f"{key} has shape {tuple(weights[key].shape)}, spec `{spec.name}` expects {shape}")
    problems += [f"{key} is not a parameter of spec `{spec.name}`" for key in weights if key not in expected]
    if problems:
        saved = read_metadata(path).get("spec", "?")
        more = f" (and {len(problems) - 12} more)" if len(problems) > 12 else ""
        raise WeightsFileError(
            f"{path} (saved from spec `{saved}`) does not fit spec `{spec.name}`: " + "; ".join(problems[:12]) + more
        )
    get_backend(backend_of(model)).set_weights(model, spec, weights)
