"""The Keras 3 backend: a spec compiled to a functional ``keras.Model``, on TensorFlow, JAX or PyTorch.

Layer names are nnspec node names, input names are the spec's input names, the model's name is the
spec's name; several heads give dict outputs ``{head name: tensor}``. Regularisers are built
explicitly as ``L1L2`` with nnspec's factors (Keras has no ``"l1_l2"`` string identifier).

Keras fixes its engine at its first import, so :func:`nnspec.backends.get_backend` chooses it
(``--keras-backend``, ``KERAS_BACKEND``, else TensorFlow) before importing this module. Nothing
here is specific to one engine; where Keras computes something else on one of them, a replacement
from :mod:`.layers` keeps TensorFlow's meaning. :mod:`.devices` lists GPUs per engine and
:mod:`.gradients` holds the one engine-specific gradient.
"""

from __future__ import annotations

import keras  # noqa: E402  (the engine is chosen by nnspec.backends.get_backend before this import)
import numpy as np

from nnspec.backends.common import (  # noqa: E402
    backend_error,
    check_weights,
    initial_weights,
    node_params,
    plugin_builder,
    regularizer_factors,
)
from nnspec.backends.keras.layers import attention_needs_explicit_scores, average_pooling  # noqa: E402
from nnspec.layers import registry
from nnspec.layers.base import initializer_settings
from nnspec.layers.shape_utils import normalize_padding2d  # noqa: E402

__all__ = ["BUILDERS", "EXPORT_FORMATS", "NAME", "build", "export", "get_weights", "layer_counts", "runner",
           "select_device", "set_weights", "trainer", "versions"]

NAME = "keras"
EXPORT_FORMATS = ("keras",)

L = keras.layers


def _reg(value):
    factors = regularizer_factors(value)
    if not factors or not any(factors):
        return None
    return keras.regularizers.L1L2(l1=factors[0], l2=factors[1])


_KERAS_INITIALIZERS = {"variance_scaling": "VarianceScaling", "random_normal": "RandomNormal",
                       "truncated_normal": "TruncatedNormal", "random_uniform": "RandomUniform",
                       "constant": "Constant", "orthogonal": "Orthogonal"}


def _init(value):
    """An nnspec initializer as Keras takes it: a name, or ``{variance_scaling: {...}}`` as the Keras
    initializer object with those settings (left-out ones at Keras's defaults: `{constant: {}}` is
    Constant(0.0), which Keras's own config cannot leave out)."""
    if isinstance(value, dict):
        name, settings = initializer_settings(value)
        return keras.initializers.get({"class_name": _KERAS_INITIALIZERS[name], "config": settings})
    return value


def _weights_kwargs(a: dict, kernel: str = "kernel") -> dict:
    kw = {
        "use_bias": a["use_bias"],
        "bias_initializer": _init(a["bias_initializer"]),
        "bias_regularizer": _reg(a.get("bias_regularizer")),
        "activity_regularizer": _reg(a.get("activity_regularizer")),
    }
    if kernel == "kernel":
        kw["kernel_initializer"] = _init(a["kernel_initializer"])
        kw["kernel_regularizer"] = _reg(a.get("kernel_regularizer"))
    return kw


def _conv(cls):
    def build(node):
        a = node.attrs
        extra = {k: a[k] for k in ("dilation_rate", "groups", "output_padding") if k in a}
        return cls(a["filters"], a["kernel_size"], strides=a["strides"], padding=a["padding"],
                   activation=a["activation"], **extra, **_weights_kwargs(a))

    return build


def _depthwise(node):
    a = node.attrs
    return L.DepthwiseConv2D(
        a["kernel_size"], strides=a["strides"], padding=a["padding"], depth_multiplier=a["depth_multiplier"],
        dilation_rate=a["dilation_rate"], activation=a["activation"],
        depthwise_initializer=_init(a["depthwise_initializer"]), depthwise_regularizer=_reg(a.get("depthwise_regularizer")),
        **_weights_kwargs(a, kernel="depthwise"),
    )


def _separable(node):
    a = node.attrs
    return L.SeparableConv2D(
        a["filters"], a["kernel_size"], strides=a["strides"], padding=a["padding"],
        depth_multiplier=a["depth_multiplier"], dilation_rate=a["dilation_rate"], activation=a["activation"],
        depthwise_initializer=_init(a["depthwise_initializer"]), pointwise_initializer=_init(a["pointwise_initializer"]),
        depthwise_regularizer=_reg(a.get("depthwise_regularizer")),
        pointwise_regularizer=_reg(a.get("pointwise_regularizer")),
        **_weights_kwargs(a, kernel="depthwise"),
    )


def _rnn(cls, only: tuple[str, ...] = ("recurrent_activation", "unit_forget_bias", "reset_after")):
    def build(node, **name):
        a = node.attrs
        kw = dict(
            activation=a["activation"], return_sequences=a["return_sequences"], go_backwards=a.get("go_backwards", False),
            dropout=a["dropout"], recurrent_initializer=_init(a["recurrent_initializer"]),
            recurrent_regularizer=_reg(a.get("recurrent_regularizer")), **_weights_kwargs(a), **name,
        )
        kw.update({k: a[k] for k in only if k in a})
        return cls(a["units"], **kw)

    return build


# The options each wrapped recurrent type takes beyond the common ones.
_WRAPPED_RNN = {
    "simple_rnn": _rnn(L.SimpleRNN, ()),
    "lstm": _rnn(L.LSTM, ("recurrent_activation", "unit_forget_bias")),
    "gru": _rnn(L.GRU, ("recurrent_activation", "reset_after")),
}


def _bidirectional(node):
    # The wrapped layer is named after its type, so Keras names the copies forward_<type>/backward_<type>.
    inner = _WRAPPED_RNN[node.attrs["layer"]](node, name=node.attrs["layer"])
    return L.Bidirectional(inner, merge_mode=node.attrs["merge_mode"])


def _tuple(value):
    """A spec list as the tuple Keras expects (None stays None)."""
    return tuple(value) if isinstance(value, list) else value


def _pool(cls):
    return lambda node: cls(pool_size=node.attrs["pool_size"], strides=node.attrs.get("strides"),
                            padding=node.attrs["padding"])


def _avg_pool(rank: int):
    return lambda node: _pool(average_pooling(rank))(node)


def _global(cls):
    return lambda node: cls(keepdims=node.attrs["keepdims"])


def _norm(cls, **extra):
    def build(node):
        a = node.attrs
        kw = {k: a[k] for k in extra}
        return cls(axis=a["axis"], epsilon=a["epsilon"], center=a["center"], scale=a["scale"], **kw)

    return build


def _mha(node):
    a = node.attrs
    return L.MultiHeadAttention(a["num_heads"], a["key_dim"], value_dim=a.get("value_dim"), dropout=a["dropout"],
                                **_weights_kwargs(a))


def _activation(function: str | None = None):
    return lambda node: L.Activation(function or node.attrs["activation"])


BUILDERS = {
    "dense": lambda n: L.Dense(n.attrs["units"], activation=n.attrs["activation"], **_weights_kwargs(n.attrs)),
    "embedding": lambda n: L.Embedding(
        n.attrs["input_dim"], n.attrs["output_dim"], embeddings_initializer=_init(n.attrs["embeddings_initializer"]),
        embeddings_regularizer=_reg(n.attrs.get("embeddings_regularizer")), mask_zero=n.attrs["mask_zero"],
    ),
    "flatten": lambda n: L.Flatten(),
    "reshape": lambda n: L.Reshape(tuple(n.attrs["target_shape"])),
    "permute": lambda n: L.Permute(tuple(n.attrs["dims"])),
    "dropout": lambda n: L.Dropout(n.attrs["rate"], noise_shape=_tuple(n.attrs.get("noise_shape"))),
    "gaussian_noise": lambda n: L.GaussianNoise(n.attrs["stddev"]),
    "rescaling": lambda n: L.Rescaling(n.attrs["scale"], offset=n.attrs["offset"]),
    "normalization": lambda n: L.Normalization(axis=_tuple(n.attrs.get("axis")), invert=n.attrs["invert"],
                                               mean=n.attrs.get("mean"), variance=n.attrs.get("variance")),
    "upsampling1d": lambda n: L.UpSampling1D(n.attrs["size"]),
    "cropping1d": lambda n: L.Cropping1D(n.attrs["cropping"]),
    "cropping2d": lambda n: L.Cropping2D(normalize_padding2d(n.attrs["cropping"])),
    "spatial_dropout2d": lambda n: L.SpatialDropout2D(n.attrs["rate"]),
    "upsampling2d": lambda n: L.UpSampling2D(n.attrs["size"], interpolation=n.attrs["interpolation"]),
    "zero_padding2d": lambda n: L.ZeroPadding2D(normalize_padding2d(n.attrs["padding"])),
    "conv1d": _conv(L.Conv1D),
    "conv2d": _conv(L.Conv2D),
    "conv3d": _conv(L.Conv3D),
    "conv2d_transpose": _conv(L.Conv2DTranspose),
    "depthwise_conv2d": _depthwise,
    "separable_conv2d": _separable,
    "max_pool1d": _pool(L.MaxPooling1D),
    "avg_pool1d": _avg_pool(1),
    "max_pool2d": _pool(L.MaxPooling2D),
    "avg_pool2d": _avg_pool(2),
    "max_pool3d": _pool(L.MaxPooling3D),
    "avg_pool3d": _avg_pool(3),
    "global_max_pool1d": _global(L.GlobalMaxPooling1D),
    "global_avg_pool1d": _global(L.GlobalAveragePooling1D),
    "global_max_pool2d": _global(L.GlobalMaxPooling2D),
    "global_avg_pool2d": _global(L.GlobalAveragePooling2D),
    "global_max_pool3d": _global(L.GlobalMaxPooling3D),
    "global_avg_pool3d": _global(L.GlobalAveragePooling3D),
    "batch_norm": _norm(L.BatchNormalization, momentum=None),
    "layer_norm": _norm(L.LayerNormalization),
    "group_norm": _norm(L.GroupNormalization, groups=None),
    "simple_rnn": _rnn(L.SimpleRNN),
    "lstm": _rnn(L.LSTM),
    "gru": _rnn(L.GRU),
    "bidirectional": _bidirectional,
    "multi_head_attention": _mha,
    "add": lambda n: L.Add(),
    "subtract": lambda n: L.Subtract(),
    "multiply": lambda n: L.Multiply(),
    "average": lambda n: L.Average(),
    "maximum": lambda n: L.Maximum(),
    "minimum": lambda n: L.Minimum(),
    "concatenate": lambda n: L.Concatenate(axis=n.attrs["axis"]),
    "activation": _activation(),
    "relu": lambda n: L.ReLU(max_value=n.attrs.get("max_value"), negative_slope=n.attrs["negative_slope"],
                             threshold=n.attrs["threshold"]),
    "relu6": lambda n: L.ReLU(max_value=6.0),
    "leaky_relu": lambda n: L.LeakyReLU(negative_slope=n.attrs["negative_slope"]),
    "elu": lambda n: L.ELU(alpha=n.attrs["alpha"]),
    "softmax": lambda n: L.Softmax(axis=n.attrs["axis"]),
    "prelu": lambda n: L.PReLU(alpha_initializer=_init(n.attrs["alpha_initializer"]),
                               alpha_regularizer=_reg(n.attrs.get("alpha_regularizer")),
                               shared_axes=_tuple(n.attrs.get("shared_axes"))),
    **{name: _activation(name) for name in ("sigmoid", "tanh", "softplus", "swish", "silu", "gelu", "linear",
                                            "hard_sigmoid", "hard_silu", "hard_swish")},
}


def _make_layer(spec, node, dtype_policy: str | None = None):
    builder = BUILDERS.get(node.type) or plugin_builder(node.type, "keras")
    if builder is None:
        raise backend_error(spec, node, f"the keras backend has no builder for layer type `{node.type}`")
    layer = builder(node)
    layer.name = node.name
    layer._name = node.name
    if dtype_policy is not None:
        layer.dtype_policy = dtype_policy  # this layer only: Keras's global policy is never touched
    if not node.trainable:
        layer.trainable = False
    return layer


def build(spec, seed: int | None = None, dtype_policy: str | None = None):
    """Compile a loaded spec to a functional ``keras.Model``.

    With ``seed``, the initial weights are nnspec's numpy re-implementation of the spec's Keras
    initialisers: repeatable, and identical to a torch build with the same seed. Without it, Keras's
    own initialisers draw them (``keras.utils.set_random_seed`` applies). ``dtype_policy`` (e.g.
    ``"mixed_bfloat16"``) is set on every layer except the heads, which stay float32 as Keras's
    mixed-precision guide advises for the outputs.
    """
    from nnspec.pipeline import load

    spec = load(spec)
    graph = spec.graph
    values = {}
    skipped: list[tuple[object, str, object]] = []
    for node in graph.nodes.values():
        if node.is_input:
            shape = tuple(None if not isinstance(d, int) else d for d in node.attrs["shape"])
            values[node.name] = keras.Input(shape=shape, name=node.name, dtype=node.attrs.get("dtype", "float32"))
            continue
        head = node.name in graph.heads.values()
        layer = _make_layer(spec, node, None if head else dtype_policy)
        if seed is not None:
            skipped += _zero_initializers(layer)
        args = [values[i] for i in node.inputs]
        style = registry.get(node.type).call_style
        if style == "list" or (style == "single" and len(args) > 1):
            values[node.name] = layer(args)
        elif style == "attention":
            query, value = args[0], args[1] if len(args) > 1 else args[0]
            key = args[2] if len(args) > 2 else None
            if attention_needs_explicit_scores(node.attrs["key_dim"], node.attrs.get("value_dim")):
                values[node.name] = layer(query, value, key=key, return_attention_scores=True)[0]
            else:
                values[node.name] = layer(query, value, key=key)
        else:
            values[node.name] = layer(args[0])
    inputs = [values[n] for n in graph.inputs]
    if len(graph.heads) == 1:
        outputs = values[next(iter(graph.heads.values()))]
    else:
        outputs = {head: values[n] for head, n in graph.heads.items()}
    model = keras.Model(inputs=inputs[0] if len(inputs) == 1 else inputs, outputs=outputs, name=spec.name)
    for owner, attr, initializer in skipped:
        setattr(owner, attr, initializer)
    if seed is not None:
        set_weights(model, spec, initial_weights(spec, seed))
    else:
        _assign_spec_values(model, spec)
    return model


def _zero_initializers(layer) -> list[tuple[object, str, object]]:
    """Let ``layer`` create its variables as zeros; returns (owner, attribute, initializer) to restore.

    A seeded build overwrites every variable with nnspec's own draws, so Keras's random draws are
    skipped: on JAX each new weight shape costs a compilation of the random generator (about a
    second each on a CPU). The layer's configuration gets its initialisers back after the build.
    """
    zeros = keras.initializers.Zeros()
    swapped = []
    owners = [layer] + ([layer.cell] if getattr(layer, "cell", None) is not None else [])  # RNN cells
    for owner in owners:
        for attr, value in list(vars(owner).items()):
            if isinstance(value, keras.initializers.Initializer):
                swapped.append((owner, attr, value))
                setattr(owner, attr, zeros)
    return swapped


def _assign_spec_values(model, spec) -> None:
    """Weights whose value the spec fixes (normalization's mean and variance) are set even without a seed."""
    for node in spec.graph.nodes.values():
        params = [] if node.is_input else node_params(spec, node.name)
        if not any(p.value is not None for p in params):
            continue
        for p, v in zip(params, _variables(model, spec, node), strict=True):
            if p.value is not None:
                v.assign(np.broadcast_to(np.asarray(p.value, dtype=v.dtype), p.shape))
        layer = model.get_layer(node.name)
        if hasattr(layer, "finalize_state"):
            layer.finalize_state()


def _variables(model, spec, node) -> list:
    """The Keras variables of a node, matched one to one with the catalog's parameters."""
    layer = model.get_layer(node.name)
    params = node_params(spec, node.name)
    variables = list(layer.weights)
    if len(variables) != len(params):
        raise ValueError(
            f"layer `{node.name}` has {len(variables)} Keras weights but the catalog lists {len(params)} "
            f"({', '.join(p.name for p in params)})"
        )
    for p, v in zip(params, variables, strict=True):
        if not v.path.endswith(p.name) or tuple(v.shape) != tuple(p.shape):
            raise ValueError(f"layer `{node.name}`: Keras weight {v.path} {tuple(v.shape)} does not match "
                             f"catalog parameter {p.name} {tuple(p.shape)}")
    return variables


def get_weights(model, spec) -> dict[str, np.ndarray]:
    """Every parameter as ``{"<layer>/<param>": array}`` in the catalog's (Keras's) layout."""
    out = {}
    for node in spec.graph.nodes.values():
        if node.is_input or not node_params(spec, node.name):  # an imported `x + 3.0` is an op, not a layer
            continue
        for p, v in zip(node_params(spec, node.name), _variables(model, spec, node), strict=True):
            out[f"{node.name}/{p.name}"] = np.array(keras.ops.convert_to_numpy(v.value))
    return out


def set_weights(model, spec, weights: dict[str, np.ndarray]) -> None:
    """Load ``{"<layer>/<param>": array}``; keys and shapes are checked first."""
    check_weights(spec, weights)
    for node in spec.graph.nodes.values():
        if node.is_input or not node_params(spec, node.name):
            continue
        for p, v in zip(node_params(spec, node.name), _variables(model, spec, node), strict=True):
            v.assign(np.asarray(weights[f"{node.name}/{p.name}"], dtype=v.dtype))
        layer = model.get_layer(node.name)
        if hasattr(layer, "finalize_state"):  # Normalization reads its statistics from here
            layer.finalize_state()


def layer_counts(model, spec) -> dict[str, tuple[int, int]]:
    """Per layer (total, trainable) as Keras counts them (``count_params``)."""
    out: dict[str, tuple[int, int]] = {}
    for name in spec.graph.nodes:
        layer = model.get_layer(name)
        total = int(layer.count_params()) if layer.weights else 0
        trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
        out[name] = (total, trainable)
    return out


def select_device(requested: str) -> str:
    from nnspec.backends.keras.loop import select_device as select

    return select(requested)


def versions() -> dict[str, str]:
    from importlib import metadata

    out = {"keras": keras.__version__, "keras_backend": keras.backend.backend()}
    for name in ("tensorflow", "tensorflow-cpu", "jax", "jaxlib", "torch"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def trainer(spec, settings, train, val, augment=None):
    from nnspec.backends.keras.loop import Loop

    return Loop(spec, settings, train, val, augment=augment)


def runner(run, model):
    from nnspec.backends.keras.inspection import KerasRunner

    return KerasRunner(run, model)


def export(spec, model, format: str, output: str, inputs: list[np.ndarray], verify: bool = True):
    """Write ``model`` as a ``.keras`` file (atomic)."""
    from nnspec.backends.keras.exporter import export as write

    return write(spec, model, format, output, inputs, verify)
