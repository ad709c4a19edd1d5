"""The lint rules: one small function per warning, each reading the analysed graph.

Every rule takes a :class:`Context` (the checked spec, its graph, shapes and parameter
counts, and who reads whom) and yields located warnings. :data:`RULES` is the explicit
table of rules; :func:`nnspec.lint.lint` runs them all. Pure Python: no framework.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from nnspec.analysis import Analysis
from nnspec.diagnostics import Diagnostic
from nnspec.layers.base import format_shape, prod
from nnspec.lint import codes as C
from nnspec.pipeline import Spec
from nnspec.spec.expr import names_read
from nnspec.spec.graph import Graph, Node

CROSS_ENTROPY = ("categorical_crossentropy", "sparse_categorical_crossentropy")
BINARY = "binary_crossentropy"
ACTIVATION_LAYERS = ("softmax", "sigmoid", "linear", "relu", "relu6", "tanh", "elu", "leaky_relu", "gelu", "silu",
                     "swish", "softplus")
PASS_THROUGH = ("dropout", "spatial_dropout2d", "flatten", "reshape", "permute")  # keep values, change layout
DROPOUTS = ("dropout", "spatial_dropout2d")
BIAS_LAYERS = ("dense", "conv1d", "conv2d", "conv2d_transpose", "depthwise_conv2d", "separable_conv2d")
WINDOWED = {  # layer type -> attribute holding its window
    "conv1d": "kernel_size", "conv2d": "kernel_size", "depthwise_conv2d": "kernel_size",
    "separable_conv2d": "kernel_size", "max_pool1d": "pool_size", "avg_pool1d": "pool_size",
    "max_pool2d": "pool_size", "avg_pool2d": "pool_size",
}
STOPS_SPATIAL = ("flatten", "reshape", "dense", "global_avg_pool1d", "global_avg_pool2d", "global_max_pool1d",
                 "global_max_pool2d", "lstm", "gru", "simple_rnn")
DATASET_CLASSES = {"fashion_mnist": 10}
DOMINANT_SHARE = 0.9
LARGE_FLATTEN = 1000  # features; below this a big dense share is just a small model


@dataclass
class Context:
    """What every rule reads: the spec, its graph and analysis, and the consumers of each node."""

    spec: Spec
    consumers: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.consumers = self.graph.consumers()

    @property
    def graph(self) -> Graph:
        return self.spec.graph

    @property
    def analysis(self) -> Analysis:
        return self.spec.analysis  # type: ignore[return-value]

    def shape(self, name: str) -> tuple:
        return self.analysis.nodes[name].output_shape

    def params(self, name: str) -> int:
        return self.analysis.nodes[name].param_count

    def producer(self, node: Node) -> Node | None:
        return self.graph.nodes[node.inputs[0]] if len(node.inputs) == 1 else None

    def at(self, path: tuple, code: C.WarningCode, message: str, hint: str, key: bool = False,
           shown: tuple | None = None) -> Diagnostic:
        """A warning located at a spec path."""
        d = self.spec.source.diagnostic(path, message, code.code, hint, key=key, shown_path=shown)
        return replace(d, severity="warning")

    def at_node(self, node: Node, code: C.WarningCode, message: str, hint: str) -> Diagnostic:
        """A warning located at a layer (inside its block definition when it comes from a block)."""
        if node.block_name:
            message += f" (in block `{node.block_name}`)"
        return self.at(node.attrs_path or node.path, code, message, hint, key=node.attrs_path != node.path,
                       shown=node.path)


Rule = Callable[[Context], Iterator[Diagnostic]]


def activation_of(ctx: Context, node: Node) -> tuple[Node, str | None]:
    """The node that sets a head's final activation, and that activation (None when unknown).

    Dropout, flatten and reshape keep values, so the activation before them still holds.
    """
    while node.type in PASS_THROUGH and ctx.producer(node) is not None:
        node = ctx.producer(node)  # type: ignore[assignment]
    if node.type in ACTIVATION_LAYERS:
        return node, "relu" if node.type == "relu6" else node.type
    if node.type == "activation":
        return node, node.attrs.get("activation")
    return node, node.attrs.get("activation")


def _loss_path(spec: Spec, head: str) -> tuple | None:
    loss = spec.raw.get("loss")
    if loss is None:
        return None
    if isinstance(loss, str) or (isinstance(loss, dict) and "type" in loss):
        return ("loss",)
    return ("loss", head)


def _at_loss(ctx: Context, head: str, node: Node, code: C.WarningCode, message: str, hint: str) -> Diagnostic:
    path = _loss_path(ctx.spec, head)
    if path is None:  # the default loss: point at the head's last layer
        return ctx.at_node(node, code, message + " (categorical_crossentropy is the default loss)", hint)
    return ctx.at(path, code, message, hint)


# -- rules ----------------------------------------------------------------------------------
def loss_fits_head(ctx: Context) -> Iterator[Diagnostic]:
    """Loss vs output activation vs units: the classic silently-wrong classification heads."""
    for head, item in ctx.spec.losses().items():
        kind = item.get("type")
        out = ctx.graph.nodes[ctx.graph.heads[head]]
        node, act = activation_of(ctx, out)
        units = ctx.shape(out.name)[-1]
        logits = item.get("from_logits")
        f = {"loss": kind, "head": head, "node": node.name, "activation": act, "units": units}
        if kind not in (*CROSS_ENTROPY, BINARY):
            if "from_logits" in item:
                yield _at_loss(ctx, head, out, C.FROM_LOGITS, C.LOGITS_NO_EFFECT.format(**f), C.LOGITS_NO_EFFECT_HINT)
            continue
        if act is None or act == "log_softmax":
            continue
        if logits is True and act in ("softmax", "sigmoid"):
            yield _at_loss(ctx, head, out, C.FROM_LOGITS, C.LOGITS_AFTER_PROBABILITIES.format(**f),
                           C.LOGITS_AFTER_PROBABILITIES_HINT.format(**f))
            continue
        wanted = "softmax" if kind in CROSS_ENTROPY else "sigmoid"
        if kind in CROSS_ENTROPY and units == 1:
            yield _at_loss(ctx, head, out, C.LOSS_UNITS, C.CE_ONE_UNIT.format(**f), C.CE_ONE_UNIT_HINT.format(**f))
        elif kind == BINARY and act == "softmax" and isinstance(units, int) and units > 1:
            yield _at_loss(ctx, head, out, C.LOSS_ACTIVATION, C.BCE_AFTER_SOFTMAX.format(**f), C.BCE_AFTER_SOFTMAX_HINT)
        elif kind in CROSS_ENTROPY and act == "sigmoid":
            yield _at_loss(ctx, head, out, C.LOSS_ACTIVATION, C.CE_SIGMOID_MULTI.format(**f), C.CE_SIGMOID_MULTI_HINT)
        elif act == "linear" and logits is None:
            yield _at_loss(ctx, head, out, C.LOSS_ACTIVATION, C.CE_IMPLICIT_LOGITS.format(**f),
                           C.CE_IMPLICIT_LOGITS_HINT.format(wanted=wanted, **f))
        elif act not in ("linear", "softmax", "sigmoid") and not logits:
            yield _at_loss(ctx, head, out, C.LOSS_ACTIVATION, C.CE_NOT_PROBABILITIES.format(**f),
                           C.CE_NOT_PROBABILITIES_HINT.format(wanted=wanted, **f))


def softmax_one_unit(ctx: Context) -> Iterator[Diagnostic]:
    """A softmax over an axis of size 1 (Keras's default axis is the last)."""
    for node in ctx.graph.nodes.values():
        if node.is_input:
            continue
        is_softmax = node.type == "softmax" or (node.type != "softmax" and node.attrs.get("activation") == "softmax"
                                                and node.type not in ("lstm", "gru", "simple_rnn"))
        axis = node.attrs.get("axis", -1) if node.type == "softmax" else -1
        shape = ctx.shape(node.name)
        if is_softmax and isinstance(axis, int) and -len(shape) <= axis < len(shape) and shape[axis] == 1:
            what = "a single unit" if node.type == "dense" else "an axis of size 1"
            f = {"node": node.name, "shape": format_shape(shape), "what": what}
            yield ctx.at_node(node, C.SOFTMAX_ONE_UNIT, C.SOFTMAX_ONE.format(**f), C.SOFTMAX_ONE_HINT.format(**f))


def dense_dominates(ctx: Context) -> Iterator[Diagnostic]:
    """A dense layer after a large flatten of feature maps whose kernel is most of the model."""
    total = ctx.analysis.total_params
    for node in ctx.graph.nodes.values():
        if node.type != "dense" or not total:
            continue
        flat = ctx.producer(node)
        while flat is not None and flat.type in DROPOUTS:
            flat = ctx.producer(flat)
        if flat is None or flat.type != "flatten":
            continue
        before = ctx.producer(flat)
        if before is None or before.is_input or len(ctx.shape(before.name)) < 3:
            continue  # flattening the raw input is a plain dense network, not this mistake
        features = prod(ctx.shape(flat.name)[1:]) or 0
        params = ctx.params(node.name)
        if features >= LARGE_FLATTEN and params / total > DOMINANT_SHARE:
            f = {"node": node.name, "params": params, "total": total, "share": params / total, "features": features,
                 "flatten": flat.name, "shape": format_shape(ctx.shape(before.name))}
            yield ctx.at_node(node, C.DENSE_DOMINATES, C.DENSE_KERNEL.format(**f), C.DENSE_KERNEL_HINT.format(**f))


def dropout_at_output(ctx: Context) -> Iterator[Diagnostic]:
    """Dropout with only parameter-free layers between it and a head's output."""
    for head, out in ctx.graph.heads.items():
        node: Node | None = ctx.graph.nodes[out]
        while node is not None and not node.is_input and ctx.params(node.name) == 0:
            if node.type in DROPOUTS:
                f = {"node": node.name, "head": head, "rate": float(node.attrs.get("rate", 0.0))}
                yield ctx.at_node(node, C.DROPOUT_OUTPUT, C.DROPOUT_LAST.format(**f), C.DROPOUT_LAST_HINT)
                break
            node = ctx.producer(node)


def _has_bias(node: Node) -> bool:
    return node.type in BIAS_LAYERS and bool(node.attrs.get("use_bias", True))


def redundant_bias(ctx: Context) -> Iterator[Diagnostic]:
    """A bias right before batch norm (subtracted away) or right after it (duplicates beta)."""
    for bn in ctx.graph.nodes.values():
        if bn.type != "batch_norm":
            continue
        before = ctx.producer(bn)
        if (before is not None and _has_bias(before) and before.attrs.get("activation") in (None, "linear")
                and ctx.consumers[before.name] == [bn.name]):
            f = {"node": before.name, "bn": bn.name}
            yield ctx.at_node(before, C.REDUNDANT_BIAS, C.BIAS_BEFORE_BN.format(**f), C.BIAS_BEFORE_BN_HINT.format(**f))
        if not bn.attrs.get("center", True):
            continue
        after = bn
        while len(ctx.consumers[after.name]) == 1:
            after = ctx.graph.nodes[ctx.consumers[after.name][0]]
            if after.type not in ("flatten", "reshape"):
                break
        # A 'same'-padded window mixes in zeros at the border, so beta is not exactly constant there.
        if after is not bn and _has_bias(after) and after.attrs.get("padding", "valid") == "valid":
            f = {"node": after.name, "bn": bn.name}
            yield ctx.at_node(after, C.REDUNDANT_BIAS, C.BIAS_AFTER_BN.format(**f), C.BIAS_AFTER_BN_HINT.format(**f))


def _window(node: Node, axis: int, n: int) -> int:
    value = node.attrs.get(WINDOWED[node.type], 1)
    values = value if isinstance(value, list) else [value] * n
    return int(values[axis]) if axis < len(values) else 1


def early_collapse(ctx: Context) -> Iterator[Diagnostic]:
    """A layer that shrinks a spatial dimension to 1 while windowed layers still follow it."""
    for node in ctx.graph.nodes.values():
        before = ctx.producer(node)
        if node.type not in WINDOWED or before is None:
            continue
        shape_in, shape_out = ctx.shape(before.name), ctx.shape(node.name)
        n = len(shape_out) - 2
        names = ("length",) if n == 1 else ("height", "width")
        for axis in range(n):
            if not (isinstance(shape_in[1 + axis], int) and shape_in[1 + axis] > 1 and shape_out[1 + axis] == 1):
                continue
            later = _windowed_after(ctx, node, axis, n)
            if later:
                shown = ", ".join(f"`{x}`" for x in later[:3]) + (", ..." if len(later) > 3 else "")
                f = {"node": node.name, "axis": names[axis], "shape": format_shape(shape_out), "count": len(later),
                     "after": shown}
                yield ctx.at_node(node, C.EARLY_COLLAPSE, C.COLLAPSE.format(**f), C.COLLAPSE_HINT.format(**f))
                break


def _windowed_after(ctx: Context, start: Node, axis: int, n: int) -> list[str]:
    """Windowed layers (window > 1 on ``axis``) reached from ``start`` before the map is flattened."""
    found, seen, stack = [], set(), list(ctx.consumers[start.name])
    while stack:
        name = stack.pop(0)
        if name in seen:
            continue
        seen.add(name)
        node = ctx.graph.nodes[name]
        if node.type in STOPS_SPATIAL or len(ctx.shape(name)) != n + 2:
            continue
        if node.type in WINDOWED and _window(node, axis, n) > 1:
            found.append(name)
        stack.extend(ctx.consumers[name])
    return found




def _references(value, out: set[str]) -> None:
    """Names read by `$name` / `${expr}` strings and `name${...}` templates anywhere inside ``value``."""
    if isinstance(value, str):
        out.update(names_read(value))
    elif isinstance(value, dict):
        for v in value.values():
            _references(v, out)
    elif isinstance(value, list):
        for v in value:
            _references(v, out)


def unused_vars(ctx: Context) -> Iterator[Diagnostic]:
    """`vars` entries that no expression reads (other vars count only as readers of each other)."""
    raw = ctx.spec.raw
    variables = raw.get("vars")
    if not isinstance(variables, dict):
        return
    used: set[str] = set()
    blocks = raw.get("blocks")
    blocks = blocks if isinstance(blocks, dict) else {}
    unused = _unused_block_names(raw)
    _references({k: v for k, v in raw.items() if k not in ("vars", "blocks")}, used)
    _references({k: v for k, v in blocks.items() if k not in unused}, used)
    grown = True
    while grown:  # a var read only by unused vars is unused too
        before = len(used)
        for name in [n for n in variables if n in used]:
            _references(variables[name], used)
        grown = len(used) > before
    for name in variables:
        if name not in used:
            f = {"name": name}
            yield ctx.at(("vars", name), C.UNUSED_VAR, C.VAR_UNUSED.format(**f), C.VAR_UNUSED_HINT.format(**f), key=True)


def _block_uses(value, out: set[str]) -> None:
    if isinstance(value, dict):
        use = value.get("block")
        if isinstance(use, dict) and isinstance(use.get("use"), str):
            out.add(use["use"])
        for v in value.values():
            _block_uses(v, out)
    elif isinstance(value, list):
        for v in value:
            _block_uses(v, out)


def _unused_block_names(raw: dict) -> list[str]:
    """Blocks that no used section or used block names."""
    blocks = raw.get("blocks")
    if not isinstance(blocks, dict):
        return []
    used: set[str] = set()
    _block_uses({k: v for k, v in raw.items() if k != "blocks"}, used)
    grown = True
    while grown:  # a block used only by unused blocks is unused too
        before = len(used)
        for name in [n for n in blocks if n in used]:
            _block_uses(blocks[name], used)
        grown = len(used) > before
    return [name for name in blocks if name not in used]


def unused_blocks(ctx: Context) -> Iterator[Diagnostic]:
    """Blocks that no `- block: {use: ...}` names (directly or through a used block)."""
    for name in _unused_block_names(ctx.spec.raw):
        f = {"name": name}
        yield ctx.at(("blocks", name), C.UNUSED_BLOCK, C.BLOCK_UNUSED.format(**f), C.BLOCK_UNUSED_HINT.format(**f),
                     key=True)


def class_count(ctx: Context) -> Iterator[Diagnostic]:
    """A classification head whose units differ from the named data set's class count."""
    data = ctx.spec.raw.get("data")
    if not isinstance(data, dict):
        return
    dataset = data.get("dataset") or (None if data.get("path") else "fashion_mnist")
    classes = DATASET_CLASSES.get(str(dataset))
    if classes is None:
        return
    rotate = data.get("rotate")
    angle_head = None
    if isinstance(rotate, dict) and rotate.get("target", True) is not False:
        angle_head = rotate.get("head") or "output"
    for head, item in ctx.spec.losses().items():
        if head == angle_head or item.get("type") not in (*CROSS_ENTROPY, BINARY):
            continue
        node = ctx.graph.nodes[ctx.graph.heads[head]]
        units = ctx.shape(node.name)[-1]
        if isinstance(units, int) and units != classes:
            f = {"head": head, "units": units, "dataset": dataset, "classes": classes, "node": node.name}
            yield ctx.at_node(node, C.CLASS_COUNT, C.CLASSES.format(**f), C.CLASSES_HINT.format(**f))


#: The rules, in the order they run (the output is sorted by position anyway).
RULES: tuple[Rule, ...] = (
    loss_fits_head, softmax_one_unit, dense_dominates, dropout_at_output, redundant_bias, early_collapse,
    unused_vars, unused_blocks, class_count,
)
