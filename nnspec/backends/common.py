"""Backend-neutral pieces shared by the torch and Keras compilers (numpy only, no framework).

- :func:`initial_weights`: Keras's initialisers re-implemented in numpy, in the catalog's (Keras's)
  layout, so a seeded build starts from the *same* weights on both backends.
- :func:`regularizer_factors` / :func:`param_regularizers`: what penalty each parameter carries.
- :func:`backend_error`: a located ``SpecError`` (code ``backend``) for combinations a backend refuses.
"""

from __future__ import annotations

import math

import numpy as np

from nnspec.diagnostics import Diagnostic
from nnspec.errors import SpecError
from nnspec.layers.base import Initializer, Param, initializer_settings

# Keras's factor for the bare strings `l1`, `l2`, `l1_l2` (keras.regularizers.L1(0.01), L2(0.01)).
DEFAULT_REGULARIZATION = 0.01
# Keras's VarianceScaling truncated normal: stddev of a unit normal truncated at +-2.
_TRUNCATION_STD = 0.87962566103423978


def node_params(spec, name: str) -> list[Param]:
    """The catalog's parameters of one node (Keras layout and names)."""
    return list(spec.analysis.nodes[name].params)


def weight_keys(spec) -> dict[str, tuple[int, ...]]:
    """Every ``"<layer>/<param>"`` key of a spec with its shape, in graph order."""
    return {f"{n}/{p.name}": tuple(p.shape) for n in spec.graph.nodes for p in node_params(spec, n)}


def backend_error(spec, node, message: str, attr: str | None = None, hint: str = "") -> SpecError:
    """A SpecError pointing at the layer (or its attribute) that a backend cannot build identically."""
    text = f"{node.name}: {message}"
    src = getattr(spec, "source", None)
    if src is not None and node.attrs_path:
        path = (*node.attrs_path, attr) if attr else node.attrs_path
        try:
            return SpecError(src.diagnostic(path, text, "backend", hint, shown_path=(*node.path, attr) if attr else node.path))
        except (KeyError, IndexError, TypeError):
            pass
    return SpecError(Diagnostic(file=getattr(src, "file", ""), message=text, code="backend", hint=hint,
                                path=".".join(map(str, node.path))))


# --- regularisers -------------------------------------------------------------------------------
def regularizer_factors(value) -> tuple[float, float] | None:
    """A spec regulariser -> (l1, l2) factors, or None. Bare strings use Keras's 0.01."""
    if value is None:
        return None
    if value == "l1":
        return (DEFAULT_REGULARIZATION, 0.0)
    if value == "l2":
        return (0.0, DEFAULT_REGULARIZATION)
    if value == "l1_l2":
        return (DEFAULT_REGULARIZATION, DEFAULT_REGULARIZATION)
    if isinstance(value, dict):
        return (float(value.get("l1", 0.0) or 0.0), float(value.get("l2", 0.0) or 0.0))
    raise ValueError(f"unknown regularizer {value!r}")


def param_regularizers(spec, node) -> dict[str, tuple[float, float]]:
    """Catalog parameter name -> (l1, l2) for the parameters of ``node`` that carry a penalty."""
    out = {}
    for p in node_params(spec, node.name):
        attr = p.regularizer_attr
        factors = regularizer_factors(node.attrs.get(attr)) if attr else None
        if factors and any(factors):
            out[p.name] = factors
    return out


def activity_regularizer(node) -> tuple[float, float] | None:
    factors = regularizer_factors(node.attrs.get("activity_regularizer"))
    return factors if factors and any(factors) else None


# --- initialisers -------------------------------------------------------------------------------
def compute_fans(shape: tuple[int, ...]) -> tuple[float, float]:
    """Keras's ``compute_fans`` on a Keras-layout shape."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


def _truncated_normal(rng: np.random.Generator, shape, stddev: float) -> np.ndarray:
    """Normal(0, stddev) with values beyond two standard deviations redrawn (as Keras)."""
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2.0
    return out * stddev


def _orthogonal(rng: np.random.Generator, shape) -> np.ndarray:
    rows = math.prod(shape[:-1]) if len(shape) > 1 else 1
    cols = shape[-1]
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return q.reshape(shape)


_NAMED_SCALING = {  # Keras's variance-scaling initialisers by name: (scale, mode, distribution)
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
}


def _variance_scaling(rng: np.random.Generator, shape, scale: float, mode: str, distribution: str) -> np.ndarray:
    """Keras's ``VarianceScaling``: variance ``scale / n`` with n the fan in, fan out or their mean."""
    fan_in, fan_out = compute_fans(shape)
    n = max(1.0, {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode])
    if distribution == "uniform":
        limit = math.sqrt(3.0 * scale / n)
        return rng.uniform(-limit, limit, shape)
    if distribution == "untruncated_normal":
        return rng.normal(0.0, math.sqrt(scale / n), shape)
    return _truncated_normal(rng, shape, math.sqrt(scale / n) / _TRUNCATION_STD)


def initialize(initializer: Initializer, shape, rng: np.random.Generator) -> np.ndarray:
    """One Keras initialiser -- a name (``he_normal``) or one with its settings (``{variance_scaling:
    {scale: 2.0, mode: fan_out}}``, missing settings at Keras's defaults) -- in numpy (float32)."""
    shape = tuple(shape)
    name, settings = initializer_settings(initializer)
    if name in _NAMED_SCALING:
        out = _variance_scaling(rng, shape, *_NAMED_SCALING[name])
    elif name == "variance_scaling":
        out = _variance_scaling(rng, shape, float(settings["scale"]), settings["mode"], settings["distribution"])
    elif name == "orthogonal":
        out = _orthogonal(rng, shape) * float(settings["gain"])
    elif name == "zeros":
        out = np.zeros(shape)
    elif name == "ones":
        out = np.ones(shape)
    elif name == "constant":
        out = np.full(shape, float(settings["value"]))
    elif name == "random_normal":
        out = rng.normal(settings["mean"], settings["stddev"], shape)
    elif name == "random_uniform":
        out = rng.uniform(settings["minval"], settings["maxval"], shape)
    elif name == "truncated_normal":
        out = settings["mean"] + _truncated_normal(rng, shape, settings["stddev"])
    else:
        raise ValueError(f"unknown initializer {name!r}")
    return np.asarray(out, dtype=np.float32)


def _initializer_of(node, param: Param) -> Initializer:
    """The parameter's own declaration says how it is drawn (see :class:`nnspec.layers.base.Param`)."""
    name = param.initializer_for(node.attrs)
    if name is None:
        raise ValueError(f"layer type `{node.type}` declares parameter `{param.name}` without an initializer: "
                         "give Param(initializer=...) or initializer_attr= in its param_shapes")
    return name


def plugin_builder(type_name: str, backend: str):
    """A plugin layer type's own builder for a backend (``build_torch`` / ``build_keras``), or None."""
    from nnspec.layers import registry

    return getattr(registry.get(type_name), f"build_{backend}", None)


def initial_weights(spec, seed: int | None) -> dict[str, np.ndarray]:
    """Fresh weights for every parameter of a spec, drawn as Keras's initialisers draw them.

    The same seed gives the same weights on every backend. Layers draw from independent streams
    keyed by their position, so adding a layer at the end does not change earlier layers.
    """
    root = np.random.SeedSequence(seed)
    out: dict[str, np.ndarray] = {}
    nodes = list(spec.graph.nodes.values())
    children = root.spawn(len(nodes))
    for node, seq in zip(nodes, children, strict=True):
        rng = np.random.default_rng(seq)
        for p in node_params(spec, node.name):
            try:
                init = _initializer_of(node, p)
            except ValueError as exc:
                raise backend_error(spec, node, str(exc)) from None
            lstm = node.type == "lstm" or (node.type == "bidirectional" and node.attrs.get("layer") == "lstm")
            if p.value is not None:
                value = np.broadcast_to(np.asarray(p.value, dtype=np.float32), p.shape).copy()
            elif lstm and p.name.rsplit("/", 1)[-1] == "bias" and node.attrs.get("unit_forget_bias", True):
                u = node.attrs["units"]
                value = np.concatenate([initialize(init, (u,), rng), np.ones(u, np.float32), initialize(init, (2 * u,), rng)])
            else:
                value = initialize(init, p.shape, rng)
            out[f"{node.name}/{p.name}"] = value
    return out


def check_weights(spec, weights: dict[str, np.ndarray], strict: bool = True) -> None:
    """Raise a clear ValueError when keys or shapes differ from the spec's parameters."""
    expected = weight_keys(spec)
    problems = []
    missing = [k for k in expected if k not in weights]
    extra = [k for k in weights if k not in expected]
    if strict and missing:
        problems.append("missing: " + ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else ""))
    if strict and extra:
        problems.append("not in the spec: " + ", ".join(extra[:10]) + (" ..." if len(extra) > 10 else ""))
    for k, shape in expected.items():
        if k in weights and tuple(np.shape(weights[k])) != shape:
            problems.append(f"{k} has shape {tuple(np.shape(weights[k]))}, the spec expects {shape}")
    if problems:
        raise ValueError(f"weights do not fit spec `{spec.name}`: " + "; ".join(problems))


# --- adapting normalization statistics ---------------------------------------------------------
def normalization_statistics(spec, layer: str, data) -> dict[str, np.ndarray]:
    """Keras's ``Normalization.adapt`` in numpy: ``{"mean", "variance", "count"}`` for one
    ``normalization`` layer, computed from the values that reach it.

    ``data`` is one array shaped like the layer's input (batch first) or an iterable of such
    batches; batches are combined exactly as Keras combines them (population variance, the
    lack-of-fit update). ``count`` is the number of values reduced per statistic (Keras keeps the
    weight for compatibility and leaves it at 0). Load the result with the backend's
    ``set_weights`` under ``"<layer>/mean"`` etc. before the first epoch.
    """
    node = spec.graph.nodes[layer]
    if node.type != "normalization":
        raise ValueError(f"layer `{layer}` is a {node.type}, not a normalization layer")
    stat_shape = next(p.shape for p in node_params(spec, layer) if p.name == "mean")
    batches = [data] if isinstance(data, np.ndarray) else data
    mean = np.zeros(stat_shape, np.float64)
    var = np.zeros(stat_shape, np.float64)
    count = 0
    for batch in batches:
        x = np.asarray(batch, dtype=np.float64)
        axis = node.attrs.get("axis")
        axes = () if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
        kept = {a % x.ndim for a in axes}
        reduce = tuple(d for d in range(x.ndim) if d not in kept)
        if tuple(x.shape[d] for d in sorted(kept)) != tuple(stat_shape):
            raise ValueError(f"normalization `{layer}` keeps axes of size {list(stat_shape)}, "
                             f"got a batch of shape {x.shape}")
        n = math.prod(x.shape[d] for d in reduce) if reduce else 1
        batch_mean, batch_var = x.mean(axis=reduce), x.var(axis=reduce)
        count += n
        w = n / count
        new_mean = mean * (1.0 - w) + batch_mean * w
        var = (var + (mean - new_mean) ** 2) * (1.0 - w) + (batch_var + (batch_mean - new_mean) ** 2) * w
        mean = new_mean
    if count == 0:
        raise ValueError(f"no data to adapt normalization `{layer}` to")
    return {"mean": mean.astype(np.float32), "variance": var.astype(np.float32), "count": np.asarray(count)}
