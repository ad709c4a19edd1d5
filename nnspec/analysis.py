"""Shape inference, parameter counting and cost: the layer rules applied over the graph.

This is the only place that checks ranks and shapes; every rank error is written by one
function (:func:`nnspec.layers.base.rank_error`), so they all read the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nnspec.diagnostics import Diagnostic
from nnspec.errors import ShapeProblem, SpecError
from nnspec.layers import registry, rules
from nnspec.layers.base import Param, prod
from nnspec.spec.graph import Graph, node_diagnostic
from nnspec.spec.loader import Source

MAX_PARAMS = 10_000_000_000  # 10^10 parameters (40 GB of float32) is beyond any spec we can build


@dataclass
class NodeInfo:
    output_shape: tuple
    params: list[Param] = field(default_factory=list)
    macs: int = 0
    trainable: bool = True

    @property
    def param_count(self) -> int:
        return sum(p.size for p in self.params)

    @property
    def trainable_count(self) -> int:
        return sum(p.size for p in self.params if p.trainable and self.trainable)

    @property
    def non_trainable_count(self) -> int:
        return self.param_count - self.trainable_count

    @property
    def activation_size(self) -> int:
        """Elements of one example's output (batch excluded)."""
        return prod(self.output_shape[1:]) or 0


@dataclass
class Analysis:
    graph: Graph
    nodes: dict[str, NodeInfo]

    @property
    def total_params(self) -> int:
        return sum(i.param_count for i in self.nodes.values())

    @property
    def trainable_params(self) -> int:
        return sum(i.trainable_count for i in self.nodes.values())

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    @property
    def total_macs(self) -> int:
        return sum(i.macs for i in self.nodes.values())

    def output_shapes(self) -> dict[str, tuple]:
        return {head: self.nodes[n].output_shape for head, n in self.graph.heads.items()}


def analyze(graph: Graph, src: Source | None = None, partial: bool = False) -> Analysis:
    """Infer every node's output shape, parameters and MACs; raise SpecError on misfits.

    ``partial``: the graph of a spec with errors (broken layers left out): reachability is not checked,
    and a problem in a layer that reads past a broken one says it may follow from that error.
    """
    infos: dict[str, NodeInfo] = {}
    diags: list[Diagnostic] = []
    total = 0
    for node in graph.nodes.values():
        cls = registry.get(node.type)
        layer = cls()
        if any(i not in infos for i in node.inputs):
            continue  # an earlier layer failed; its error is already reported
        shapes = [infos[i].output_shape for i in node.inputs]
        try:
            out = rules.output_shape(node.type, shapes, node.attrs)
            params = layer.param_shapes(shapes, node.attrs)
            macs = layer.macs(shapes, out, node.attrs) or 0
        except ShapeProblem as exc:
            hint = _channels_first_hint(graph)
            if hint and exc.code == "shape":
                exc.hint = f"{hint} (otherwise: {exc.hint})" if exc.hint else hint
            suspect = _after_error(graph, node) if partial else 0
            if suspect:
                exc.hint = (f"{exc.hint}; " if exc.hint else "") + f"this may follow from the error on line {suspect}"
            diags.append(node_diagnostic(src, node, exc))
            continue
        except Exception as exc:
            if cls.__module__.startswith("nnspec."):
                raise  # a bug in a built-in rule: let it surface
            diags.append(node_diagnostic(src, node, ShapeProblem(
                f"{node.type} (a plugin layer type from {cls.__module__}) failed in its shape rules: "
                f"{type(exc).__name__}: {str(exc)[:200]}", hint="report it to the plugin's authors")))
            continue
        info = NodeInfo(out, params, macs, node.trainable)
        infos[node.name] = info
        total += info.param_count
    if not partial:
        diags.extend(_unused(graph, src, failed={n for n in graph.nodes if n not in infos}))
    if total > MAX_PARAMS:
        biggest = max(infos.items(), key=lambda kv: kv[1].param_count)
        node = graph.nodes[biggest[0]]
        diags.append(
            node_diagnostic(
                src,
                node,
                ShapeProblem(
                    f"the model would have {total:,} parameters ({_bytes(total * 4)} of float32); "
                    f"`{node.name}` alone has {biggest[1].param_count:,}",
                    hint="reduce units/filters or add pooling before dense layers",
                    code="size",
                ),
            )
        )
    if diags:
        raise SpecError(diags)
    return Analysis(graph, infos)


def _after_error(graph: Graph, node) -> int:
    """The line of a broken layer upstream of ``node`` (read past when the spec has errors), or 0."""
    stack, seen = [node.name], set()
    while stack:
        name = stack.pop()
        if name in seen or name not in graph.nodes:
            continue
        seen.add(name)
        current = graph.nodes[name]
        if current.after_error:
            return current.after_error
        stack.extend(current.inputs)
    return 0


def _channels_first_hint(graph: Graph) -> str:
    """A hint when an image input is written channels-first ([1, 28, 28]); nnspec is channels-last."""
    for name in graph.inputs:
        shape = graph.nodes[name].attrs.get("shape") or []
        if len(shape) == 3 and all(isinstance(d, int) for d in shape) and shape[0] in (1, 3, 4) and shape[1] > 4 \
                and shape[2] > 4:
            c, h, w = shape
            return (f"input `{name}` has shape {list(shape)}: nnspec is channels-last (height, width, channels), so "
                    f"this reads as {c}x{h} images with {w} channels; write `shape: [{h}, {w}, {c}]`")
    return ""


def _unused(graph: Graph, src: Source | None, failed: set[str]) -> list[Diagnostic]:
    """Layers and inputs from which no output can be reached (Keras would silently drop them)."""
    needed: set[str] = set()
    stack = list(graph.outputs)
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(graph.nodes[name].inputs)
    out = []
    for node in graph.nodes.values():
        if node.name not in needed and graph.outputs and node.name not in failed:
            what = "input" if node.is_input else "layer"
            problem = ShapeProblem(f"{what} `{node.name}` does not lead to any output", code="reference",
                                   hint="read it from a later layer (inputs: [...]) or remove it")
            out.append(node_diagnostic(src, node, problem, prefix=False))
    return out


def _bytes(n: int) -> str:
    value: float = n
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} EB"
