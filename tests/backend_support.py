"""Helpers shared by the backend tests: build a spec in both frameworks, move weights, compare.

Real torch and real Keras, no mocks. Imported lazily by tests marked ``torch``/``keras``.
"""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BATCH = 3
SYMBOLIC = 5  # length used for unknown / symbolic dimensions


def concrete(shape) -> tuple:
    return tuple(d if isinstance(d, int) and not isinstance(d, bool) else SYMBOLIC for d in shape)


def random_inputs(spec, seed: int = 0) -> list[np.ndarray]:
    """One random batch per graph input (integer indices below the embedding's input_dim)."""
    rng = np.random.default_rng(seed)
    out = []
    users = spec.graph.consumers()
    for name in spec.graph.inputs:
        node = spec.graph.nodes[name]
        shape = (BATCH, *concrete(node.attrs["shape"]))
        dtype = node.attrs.get("dtype", "float32")
        if dtype.startswith("int") or dtype == "uint8":
            high = min((spec.graph.nodes[u].attrs.get("input_dim", 10) for u in users[name]), default=10)
            out.append(rng.integers(0, high, shape).astype(dtype))
        else:
            out.append(rng.standard_normal(shape).astype(np.float32))
    return out


def random_weights(spec, seed: int = 1) -> dict[str, np.ndarray]:
    """Kernels drawn as the spec's initialisers draw them (activations stay O(1) in deep specs);
    every bias, beta, gamma, PReLU alpha and (moving) statistic perturbed so that none is trivial."""
    from nnspec.backends.common import initial_weights

    rng = np.random.default_rng(seed)
    out = initial_weights(spec, seed)
    for key, value in out.items():
        leaf = key.rsplit("/", 1)[-1]
        if leaf in ("moving_variance", "variance"):
            out[key] = rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
        elif leaf in ("bias", "beta", "gamma", "moving_mean", "mean", "alpha"):
            out[key] = (value + rng.standard_normal(value.shape) * 0.2).astype(np.float32)
    return out


def run_torch(model, inputs):
    import torch

    model.eval()
    with torch.no_grad():
        y = model(*[torch.from_numpy(x) for x in inputs])
    return {k: v.numpy() for k, v in y.items()} if isinstance(y, dict) else y.numpy()


def run_keras(model, inputs):
    """Inference outputs as numpy, on whichever framework Keras runs on."""
    from keras import ops

    y = model(inputs[0] if len(inputs) == 1 else list(inputs), training=False)
    return {k: ops.convert_to_numpy(v) for k, v in y.items()} if isinstance(y, dict) else ops.convert_to_numpy(y)


def max_diff(a, b) -> float:
    if isinstance(a, dict):
        assert set(a) == set(b)
        return max(max_diff(a[k], b[k]) for k in a)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def torch_counts(model, spec) -> dict[str, tuple[int, int]]:
    """Per layer: (total, trainable) as torch sees them; BatchNorm moving statistics non-trainable;
    constants (non-persistent buffers, e.g. a normalization's spec-set mean) are not weights."""
    out = {}
    for name, module in model.layers.items():
        total = trainable = 0
        for p in module.parameters():
            total += p.numel()
            trainable += p.numel() if p.requires_grad else 0
        state = module.state_dict()
        for key, b in module.named_buffers():
            total += b.numel() if key in state else 0
        out[name] = (total, trainable)
    return out


def keras_counts(model, spec) -> dict[str, tuple[int, int]]:
    out = {}
    for name in spec.graph.nodes:
        layer = model.get_layer(name)
        out[name] = (int(layer.count_params()) if layer.weights else 0,
                     int(sum(np.prod(w.shape) for w in layer.trainable_weights)))
    return out


def nnspec_counts(spec) -> dict[str, tuple[int, int]]:
    return {n: (i.param_count, i.trainable_count) for n, i in spec.analysis.nodes.items()}


def torch_layer_shapes(model, inputs) -> dict[str, tuple]:
    """Every layer's output shape from one forward pass (forward hooks)."""
    import torch

    shapes = {}
    hooks = [m.register_forward_hook(lambda mod, args, out, name=name: shapes.__setitem__(name, tuple(out.shape)))
             for name, m in model.layers.items()]
    try:
        model.eval()
        with torch.no_grad():
            model(*[torch.from_numpy(x) for x in inputs])
    finally:
        for h in hooks:
            h.remove()
    return shapes


def keras_layer_shapes(model, spec) -> dict[str, tuple]:
    """Every layer's symbolic output shape (the first output of a layer that also returns attention scores)."""
    out = {}
    for n in spec.graph.nodes:
        if not spec.graph.nodes[n].is_input:
            output = model.get_layer(n).output
            out[n] = tuple((output[0] if isinstance(output, (list, tuple)) else output).shape)
    return out


def expected_shape(spec, name: str, batch=None) -> tuple:
    shape = spec.analysis.nodes[name].output_shape
    return (batch, *[d if isinstance(d, int) else (SYMBOLIC if batch else None) for d in shape[1:]])
