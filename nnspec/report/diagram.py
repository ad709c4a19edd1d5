"""Architecture diagrams: a checked spec -> DOT text -> (graphviz) SVG, PNG or PDF.

Two steps kept apart, as Keras's ``model_to_dot`` / ``plot_model`` do:

1. :func:`build_diagram` gathers what to draw as plain data (:class:`Diagram`: nodes, edges,
   clusters), and :func:`to_dot` formats it. Pure Python; no graphviz, no framework.
2. :func:`write` picks the format from the file extension; ``.dot`` is written as is, other
   formats go through graphviz's ``dot`` (a subprocess with a timeout). When ``dot`` is
   missing, the ``.dot`` file is still written next to the output and :class:`GraphvizMissing`
   says how to install graphviz. Every file is written atomically.

Levels of detail: ``layers`` (default) draws one node per layer, a block used with ``repeat: N``
drawn once and marked ``xN``, and long plain chains folded into one node when the spec is large;
``expand=True`` draws every layer. ``blocks`` draws one box per section (the course's
input -> encoder -> decoder -> head picture).
"""

from __future__ import annotations

import html
import math
import os
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field

from nnspec.errors import UserError
from nnspec.layers import registry
from nnspec.layers.base import format_shape

FORMATS = ("svg", "png", "pdf", "dot")
LEVELS = ("layers", "blocks")
RANKDIRS = ("TB", "LR")
DEFAULT_MAX_NODES = 80  # above this many drawn nodes, long plain chains are folded
MIN_FOLD_RUN = 4  # a chain this long (or longer) folds into one node
DOT_TIMEOUT_S = 60.0
PNG_DPI = 144  # sharper than graphviz's 96 for a picture people open directly
INSTALL_HINT = "install it with `apt-get install graphviz` (Debian/Ubuntu) or `brew install graphviz` (macOS)"

# Fill colours by parameter share (0 parameters first, then darker for a larger share).
TRAINABLE_FILLS = ("#ffffff", "#eef4fb", "#d4e5f5", "#b2d0ec", "#8ab8e0", "#6aa3d6")
FROZEN_FILLS = ("#ffffff", "#f0f0f0", "#dddddd", "#c9c9c9", "#b5b5b5", "#a0a0a0")
INPUT_FILL = "#dff0d4"
LOSS_FILL = "#fbe0cf"
HEAVY_SHARE = 0.25  # layers with at least this share of all parameters count as heavy
SECTION_STYLE = {  # cluster fill, cluster border
    "inputs": ("#f5faf1", "#8fbf73"),
    "encoder": ("#f4f8fd", "#7ea6d4"),
    "decoder": ("#f7f4fc", "#a08cc9"),
    "head": ("#fdf8f1", "#d6a866"),
    "heads": ("#fdf8f1", "#d6a866"),
    "loss": ("#fdf4ef", "#d98c63"),
    "legend": ("#ffffff", "#bbbbbb"),
}


class DiagramError(UserError):
    """A diagram could not be written (unknown format, graphviz failed or is missing)."""


class GraphvizMissing(DiagramError):
    """graphviz's ``dot`` is not installed; ``dot_path`` is where the DOT text was written."""

    def __init__(self, output: str, dot_path: str):
        self.output = output
        self.dot_path = dot_path
        super().__init__(
            f"graphviz's `dot` program was not found, so {output} was not drawn; {INSTALL_HINT}. "
            f"The DOT text was written to {dot_path}"
        )


# --- the data: what to draw ------------------------------------------------------------------
@dataclass
class DrawnNode:
    id: str
    label: str  # a graphviz HTML label (without the outer <>)
    attrs: dict[str, str]
    cluster: str | None  # key of the innermost cluster holding it
    kind: str = "layer"  # layer, input, loss, fold, section, legend
    layers: tuple[str, ...] = ()  # graph nodes this drawn node stands for


@dataclass
class DrawnEdge:
    src: str
    dst: str
    label: str
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class Cluster:
    key: str
    label: str  # lines separated by \n; drawn left-justified, clear of the edges down the middle
    parent: str | None
    attrs: dict[str, str]
    same_rank: bool = False  # draw its nodes side by side (several inputs, several losses)


@dataclass
class Diagram:
    name: str
    title: str
    rankdir: str
    level: str
    nodes: list[DrawnNode] = field(default_factory=list)
    edges: list[DrawnEdge] = field(default_factory=list)
    clusters: dict[str, Cluster] = field(default_factory=dict)

    def node_ids(self, kind: str | None = None) -> list[str]:
        return [n.id for n in self.nodes if kind is None or n.kind == kind]


# --- small formatting helpers ------------------------------------------------------------------
def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def _dims(value) -> str:
    """3 -> '3x3' for 2-D windows is done by the caller; [3, 5] -> '3x5'."""
    if isinstance(value, (list, tuple)):
        return "×".join(str(v) for v in value)
    return str(value)


def _window(value, n: int) -> str:
    if isinstance(value, (list, tuple)):
        return _dims(value)
    return "×".join([str(value)] * n)


def _spatial_rank(layer_type: str) -> int:
    """Axes a layer's window spans, as its catalog entry declares (2 when it has no window)."""
    return registry.get(layer_type).spatial_rank or 2


def _count(n: int) -> str:
    return f"{n:,}"


def _params_text(params: int, non_trainable: int = 0) -> str:
    if params == 0:
        return "no params"
    text = f"{_count(params)} param{'s' if params != 1 else ''}"
    if 0 < non_trainable < params:
        text += f" ({_count(non_trainable)} non-trainable)"
    return text


def key_attributes(layer_type: str, attrs: dict) -> str:
    """The settings worth reading in a diagram, short: '16 × 3×3, stride 2, same, relu'."""
    cls = registry.get(layer_type)
    defaults = cls.defaults()
    n = _spatial_rank(layer_type)
    parts: list[str] = []
    keys = list(cls.key_attrs)
    if "filters" in keys and "kernel_size" in keys:
        parts.append(f"{attrs.get('filters')} × {_window(attrs.get('kernel_size'), n)}")
        keys = [k for k in keys if k not in ("filters", "kernel_size")]
    for key in keys:
        value = attrs.get(key)
        if value is None:
            continue
        default = defaults.get(key)
        if key == "activation":
            if value not in ("linear", None):
                parts.append(str(value))
        elif key == "kernel_size":
            parts.append(_window(value, n))
        elif key == "pool_size":
            parts.append(f"pool {_window(value, n)}")
        elif key == "strides":
            if value != 1 and value != [1] * n:
                parts.append(f"stride {_dims(value)}")
        elif key == "padding":
            if value != default:
                parts.append(str(value))
        elif key == "units":
            parts.append(f"{value} unit{'s' if value != 1 else ''}")
        elif key == "rate":
            parts.append(f"rate {value}")
        elif key in ("shape", "target_shape", "dims"):
            parts.append(format_shape(tuple(value)))
        elif isinstance(value, bool):
            if value != default:
                parts.append(key if value else f"no {key}")
        elif value != default or cls.attributes.get(key) is not None and cls.attributes[key].required:
            parts.append(f"{key} {_dims(value)}")
    return ", ".join(parts)


def _fill_level(share: float, params: int) -> int:
    if params == 0:
        return 0
    return 1 + min(4, int(math.sqrt(max(share, 0.0)) * 5))


def _style_for(params: int, total: int, frozen: bool) -> dict[str, str]:
    share = params / total if total else 0.0
    fills = FROZEN_FILLS if frozen else TRAINABLE_FILLS
    attrs = {
        "fillcolor": fills[_fill_level(share, params)],
        "penwidth": f"{1 + 3 * math.sqrt(share):.1f}" if params else "1",
        "style": "rounded,filled,dashed" if frozen else "rounded,filled",
    }
    if frozen:
        attrs["color"] = "#777777"
    return attrs


def _label(title: str, kind: str, lines: list[str]) -> str:
    head = f"<B>{_esc(title)}</B>"
    if kind:
        head += f'  <FONT COLOR="#555555">{_esc(kind)}</FONT>'
    # A table, not <BR/>s: rows keep the title's descenders (the _ in conv2d_1) off the next line.
    rows = [head] + [f'<FONT POINT-SIZE="9">{_esc(line)}</FONT>' for line in lines if line]
    cells = "".join(f"<TR><TD>{row}</TD></TR>" for row in rows)
    return f'<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{cells}</TABLE>'


def _shape_label(shape) -> str:
    return format_shape(tuple(shape))


# --- building the diagram ----------------------------------------------------------------------
@dataclass
class _BlockUse:
    """One `- block: {use: ..., repeat: N}` item: its repetitions' node names, in order."""

    block_name: str
    reps: list[list[str]]

    @property
    def repeat(self) -> int:
        return len(self.reps)


def _block_uses(graph) -> list[_BlockUse]:
    """Group block-instance nodes into uses (consecutive repetitions 0, 1, ... of one block)."""
    by_label: dict[str, list[str]] = {}
    for node in graph.nodes.values():
        if node.block:
            by_label.setdefault(node.block, []).append(node.name)
    uses: list[_BlockUse] = []
    for label, names in by_label.items():
        first = graph.nodes[names[0]]
        current = uses[-1] if uses else None
        if (
            current is not None
            and first.repeat == current.repeat
            and first.block_name == current.block_name
            and first.repeat != 0
        ):
            current.reps.append(names)
        else:
            uses.append(_BlockUse(first.block_name or label, [names]))
    return uses


def _foldable(graph, use: _BlockUse) -> bool:
    """A repeated use is drawn once only when every repetition has the same layer types."""
    if use.repeat < 2:
        return False
    types = [[graph.nodes[n].type for n in rep] for rep in use.reps]
    return all(t == types[0] for t in types)


def build_diagram(spec, level: str = "layers", expand: bool = False, rankdir: str = "TB",
                  max_nodes: int = DEFAULT_MAX_NODES) -> Diagram:
    """Gather the nodes, edges and clusters to draw for a loaded spec (see the module docstring)."""
    if level not in LEVELS:
        raise DiagramError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
    if rankdir not in RANKDIRS:
        raise DiagramError(f"unknown rankdir {rankdir!r}; choose one of {', '.join(RANKDIRS)}")
    analysis = spec.analysis
    title = f"{spec.name} — {_params_text(analysis.total_params, analysis.non_trainable_params)}"
    diagram = Diagram(name=spec.name, title=title, rankdir=rankdir, level=level)
    if level == "blocks":
        _build_blocks(spec, diagram)
    else:
        _build_layers(spec, diagram, expand, max_nodes)
    _add_loss(spec, diagram)
    _add_legend(spec, diagram)
    return diagram


def _section_cluster(diagram: Diagram, graph, analysis, section: str) -> str:
    """The cluster of a section (heads.<name> nested in a 'heads' cluster); created on first use."""
    if section in diagram.clusters:
        return section
    parent = None
    if section.startswith("heads."):
        parent = "heads"
        if parent not in diagram.clusters:
            fill, border = SECTION_STYLE["heads"]
            diagram.clusters[parent] = Cluster(parent, "heads", None, _cluster_style(fill, border))
    names = [n.name for n in graph.nodes.values() if n.section == section]
    params = sum(analysis.nodes[n].param_count for n in names)
    if section == "inputs":
        label = "inputs" if len(names) != 1 else "input"
    else:
        shown = section.split(".", 1)[1] if section.startswith("heads.") else section
        label = f"{shown}\n{len(names)} layer{'s' if len(names) != 1 else ''} · {_params_text(params)}"
    fill, border = SECTION_STYLE.get(section.split(".")[0], SECTION_STYLE["encoder"])
    diagram.clusters[section] = Cluster(section, label, parent, _cluster_style(fill, border),
                                        same_rank=section == "inputs")
    return section


def _cluster_style(fill: str, border: str, dashed: bool = False) -> dict[str, str]:
    return {
        "style": "rounded,filled,dashed" if dashed else "rounded,filled",
        "fillcolor": fill,
        "color": border,
        "fontsize": "11",
        "fontcolor": "#333333",
        "labeljust": "l",  # keeps the title clear of edges, which run down the middle
    }


def _build_layers(spec, diagram: Diagram, expand: bool, max_nodes: int) -> None:
    graph, analysis = spec.graph, spec.analysis
    total = analysis.total_params
    infos = analysis.nodes

    # 1. Repeated block uses: map every repetition's node onto the first repetition's node.
    rep_of: dict[str, str] = {n: n for n in graph.nodes}
    use_of: dict[str, tuple[int, int]] = {}  # node -> (use index, repetition index) for folded uses
    uses = _block_uses(graph)
    folded_uses = [] if expand else [u for u in uses if _foldable(graph, u)]
    for ui, use in enumerate(folded_uses):
        for r, rep in enumerate(use.reps):
            for position, name in enumerate(rep):
                rep_of[name] = use.reps[0][position]
                use_of[name] = (ui, r)

    drawn = [n for n in graph.nodes if rep_of[n] == n]

    # 2. Edges between drawn nodes (cross-repetition edges become one dashed "xN" back edge).
    raw_edges: list[tuple[str, str, str, str]] = []  # (src, dst, original producer, original consumer)
    for node in graph.nodes.values():
        for producer in node.inputs:
            a, b = use_of.get(producer), use_of.get(node.name)
            if a and b and a[0] == b[0] and a[1] != b[1]:
                continue
            raw_edges.append((rep_of[producer], rep_of[node.name], producer, node.name))

    # 3. Large specs: fold long plain chains into one node.
    fold_of: dict[str, str] = {}
    folds: dict[str, list[str]] = {}
    if not expand and len(drawn) > max_nodes:
        fold_of, folds = _fold_runs(graph, drawn, raw_edges)

    # 4. Clusters for sections and block uses.
    block_cluster: dict[str, str] = {}
    block_params: dict[str, int] = {}
    for node in graph.nodes.values():
        if node.block:
            block_params[node.block] = block_params.get(node.block, 0) + infos[node.name].param_count
    for node_name in drawn:
        node = graph.nodes[node_name]
        section = _section_cluster(diagram, graph, analysis, node.section)
        if not node.block or node.block in block_cluster:
            continue
        key = f"block:{node.block}"
        found = next((u for u in folded_uses if node_name in u.reps[0]), None)
        if found is not None:
            use = found
            per = [sum(infos[n].param_count for n in rep) for rep in use.reps]
            params = f"{_count(per[0])} params each, {_count(sum(per))} in all" if len(set(per)) == 1 \
                else f"{_params_text(sum(per))} in all"
            label = f"{use.block_name} x{use.repeat}\n{params}"
        else:
            whole = next((u for u in uses if any(node_name in rep for rep in u.reps)), None)
            which = ""
            if whole is not None and whole.repeat > 1:
                index = next(i for i, rep in enumerate(whole.reps) if node_name in rep)
                which = f" ({index + 1} of {whole.repeat})"
            label = f"{node.block_name}{which}\n{_params_text(block_params[node.block])}"
        diagram.clusters[key] = Cluster(key, label, section, _cluster_style("#ffffff", "#8c8c8c", dashed=True))
        block_cluster[node.block] = key

    # 5. Nodes.
    emitted_folds: set[str] = set()
    outputs = set(graph.outputs)
    for node_name in drawn:
        if node_name in fold_of:
            fold_id = fold_of[node_name]
            if fold_id not in emitted_folds:
                emitted_folds.add(fold_id)
                diagram.nodes.append(_fold_node(spec, fold_id, folds[fold_id], total))
            continue
        node = graph.nodes[node_name]
        cluster = block_cluster.get(node.block) if node.block else node.section
        diagram.nodes.append(_layer_node(spec, node, [n for n in graph.nodes if rep_of[n] == node_name],
                                         total, cluster, node_name in outputs or any(
                                             rep_of[o] == node_name for o in outputs)))

    # 6. Edges, after folding; one back edge per folded repeated use.
    seen: set[tuple[str, str]] = set()
    for src, dst, producer, consumer in raw_edges:
        src, dst = fold_of.get(src, src), fold_of.get(dst, dst)
        if src == dst:
            continue
        # an edge drawn on behalf of folded layers is drawn once; the graph's own edges all are
        if (src, dst) in seen and (src, dst) != (producer, consumer):
            continue
        seen.add((src, dst))
        diagram.edges.append(DrawnEdge(src, dst, _shape_label(infos[producer].output_shape)))
    for use in folded_uses:
        first, last = use.reps[0][0], use.reps[0][-1]
        diagram.edges.append(DrawnEdge(fold_of.get(last, last), fold_of.get(first, first), f"x{use.repeat}", {
            "style": "dashed", "color": "#8c8c8c", "fontcolor": "#555555", "constraint": "false",
        }))


def _layer_node(spec, node, stands_for: list[str], total: int, cluster: str | None, is_output: bool) -> DrawnNode:
    infos = spec.analysis.nodes
    info = infos[node.name]
    shapes = [infos[n].output_shape for n in stands_for]
    shape_text = _shape_label(shapes[0])
    if shapes[-1] != shapes[0]:
        shape_text += f" … {_shape_label(shapes[-1])}"
    params = [infos[n].param_count for n in stands_for]
    if node.is_input:
        label = _label(node.name, "Input", [_shape_label(info.output_shape), node.attrs.get("dtype", "")
                                            if node.attrs.get("dtype") != "float32" else ""])
        attrs = {"fillcolor": INPUT_FILL, "style": "rounded,filled", "color": "#5c8f3f"}
        return DrawnNode(node.name, label, attrs, "inputs", kind="input", layers=(node.name,))
    cls = registry.get(node.type)
    count = _params_text(params[0], info.non_trainable_count)
    if len(set(params)) > 1:
        count = f"{_count(params[0])} … {_params_text(params[-1])}"
    lines = [key_attributes(node.type, node.attrs), f"{shape_text} · {count}"]
    if not node.trainable:
        lines.append("frozen")
    attrs = _style_for(sum(params), total, not node.trainable)
    if is_output:
        attrs["peripheries"] = "2"
    return DrawnNode(node.name, _label(node.name, cls.keras_class, lines), attrs, cluster, layers=tuple(stands_for))


def _fold_runs(graph, drawn: list[str], edges: list[tuple[str, str, str, str]]):
    """Fold maximal chains (one reader, one producer, same section, not in a block) of MIN_FOLD_RUN+."""
    ins: dict[str, set[str]] = {n: set() for n in drawn}
    outs: dict[str, set[str]] = {n: set() for n in drawn}
    for src, dst, _, _ in edges:
        if src != dst:
            ins[dst].add(src)
            outs[src].add(dst)
    outputs = set(graph.outputs)

    def plain(name: str) -> bool:
        node = graph.nodes[name]
        return not node.is_input and not node.block and name not in outputs

    runs: list[list[str]] = []
    current: list[str] = []
    for name in drawn:
        node = graph.nodes[name]
        prev = current[-1] if current else None
        joins = (
            prev is not None
            and plain(name)
            and ins[name] == {prev}
            and outs[prev] == {name}
            and graph.nodes[prev].section == node.section
            and graph.nodes[prev].trainable == node.trainable
        )
        if joins:
            current.append(name)
        else:
            if len(current) >= MIN_FOLD_RUN:
                runs.append(current)
            current = [name] if plain(name) else []
    if len(current) >= MIN_FOLD_RUN:
        runs.append(current)
    fold_of: dict[str, str] = {}
    folds: dict[str, list[str]] = {}
    for run in runs:
        fold_id = f"fold:{run[0]}..{run[-1]}"
        folds[fold_id] = run
        for name in run:
            fold_of[name] = fold_id
    return fold_of, folds


def _fold_node(spec, fold_id: str, run: list[str], total: int) -> DrawnNode:
    graph, infos = spec.graph, spec.analysis.nodes
    types = Counter(graph.nodes[n].type for n in run)
    kinds = ", ".join(f"{t} x{c}" if c > 1 else t for t, c in types.most_common(3))
    if len(types) > 3:
        kinds += ", …"
    params = sum(infos[n].param_count for n in run)
    first, last = graph.nodes[run[0]], graph.nodes[run[-1]]
    lines = [kinds, f"{run[0]} … {run[-1]}", f"→ {_shape_label(infos[last.name].output_shape)} · {_params_text(params)}"]
    frozen = not first.trainable
    attrs = _style_for(params, total, frozen)
    attrs["style"] += ",bold" if params / max(total, 1) >= HEAVY_SHARE else ""
    attrs["shape"] = "box3d"
    return DrawnNode(fold_id, _label(f"{len(run)} layers", "folded", lines), attrs, first.section, kind="fold",
                     layers=tuple(run))


def _units(graph) -> dict[str, str]:
    """Blocks level: each graph node's box (inputs keep their own boxes; a section is one box)."""
    return {n.name: (n.name if n.is_input else n.section) for n in graph.nodes.values()}


def _block_summary(graph, names: list[str]) -> str:
    """'blocks: residual x3, residual x2' for the block uses among a section's layers."""
    wanted = set(names)
    uses = [u for u in _block_uses(graph) if u.reps[0][0] in wanted]
    if not uses:
        return ""
    return "blocks: " + ", ".join(f"{u.block_name} x{u.repeat}" if u.repeat > 1 else u.block_name for u in uses)


def _build_blocks(spec, diagram: Diagram) -> None:
    graph, analysis = spec.graph, spec.analysis
    infos, total = analysis.nodes, analysis.total_params
    unit_of = _units(graph)
    members: dict[str, list[str]] = {}
    for name, unit in unit_of.items():
        members.setdefault(unit, []).append(name)
    edges: dict[tuple[str, str, str], None] = {}
    ins: dict[str, list[str]] = {u: [] for u in members}
    outs: dict[str, list[str]] = {u: [] for u in members}
    for node in graph.nodes.values():
        for producer in node.inputs:
            a, b = unit_of[producer], unit_of[node.name]
            if a == b:
                continue
            shape = _shape_label(infos[producer].output_shape)
            edges.setdefault((a, b, shape), None)
            if shape not in ins[b]:
                ins[b].append(shape)
            if shape not in outs[a]:
                outs[a].append(shape)
    for name in graph.outputs:
        shape = _shape_label(infos[name].output_shape)
        if shape not in outs[unit_of[name]]:
            outs[unit_of[name]].append(shape)
    outputs = {unit_of[n] for n in graph.outputs}
    for unit, names in members.items():
        first = graph.nodes[names[0]]
        if first.is_input:
            node = _layer_node(spec, first, [first.name], total, None, False)
            node.cluster = None
            diagram.nodes.append(node)
            continue
        params = sum(infos[n].param_count for n in names)
        non_trainable = sum(infos[n].non_trainable_count for n in names)
        types = Counter(graph.nodes[n].type for n in names)
        kinds = ", ".join(f"{t} x{c}" if c > 1 else t for t, c in types.most_common(4))
        if len(types) > 4:
            kinds += ", …"
        title = unit.split(".", 1)[1] if unit.startswith("heads.") else unit
        frozen = all(not graph.nodes[n].trainable for n in names)
        lines = [
            f"{len(names)} layer{'s' if len(names) != 1 else ''} · {_params_text(params, non_trainable)}",
            kinds,
            _block_summary(graph, names),
            f"in {' + '.join(ins[unit]) or '-'}",
            f"out {' + '.join(outs[unit]) or '-'}",
        ]
        if frozen:
            lines.append("frozen")
        attrs = _style_for(params, total, frozen)
        attrs["shape"] = "box"
        if unit in outputs:
            attrs["peripheries"] = "2"
        kind = "head" if unit.startswith("heads.") else "section"
        diagram.nodes.append(DrawnNode(unit, _label(title, kind, lines), attrs, None, kind="section",
                                       layers=tuple(names)))
    for a, b, shape in edges:
        diagram.edges.append(DrawnEdge(a, b, shape))


def _add_loss(spec, diagram: Diagram) -> None:
    """One loss node per head (in a 'loss' cluster), fed by the head's output; only when the spec has a loss."""
    if not spec.loss:
        return
    graph, infos = spec.graph, spec.analysis.nodes
    drawn = {n.id: n for n in diagram.nodes}
    holder = {layer: n.id for n in diagram.nodes for layer in n.layers}
    fill, border = SECTION_STYLE["loss"]
    diagram.clusters["loss"] = Cluster("loss", "loss", None, _cluster_style(fill, border), same_rank=True)
    for head, item in spec.losses().items():
        output = graph.heads[head]
        source = holder.get(output, output)
        if source not in drawn:
            continue
        lines = [str(item.get("type", ""))]
        if item.get("weight", 1.0) != 1.0:
            lines.append(f"weight {item['weight']}")
        node_id = f"loss:{head}"
        attrs = {"fillcolor": LOSS_FILL, "style": "rounded,filled", "color": "#b86a3c", "shape": "box"}
        diagram.nodes.append(DrawnNode(node_id, _label("loss" if head == "output" else f"loss: {head}", "", lines),
                                       attrs, "loss", kind="loss"))
        diagram.edges.append(DrawnEdge(source, node_id, _shape_label(infos[output].output_shape)))


_SWATCH = 'BORDER="1" COLOR="#999999" WIDTH="16"'


def _add_legend(spec, diagram: Diagram) -> None:
    analysis = spec.analysis
    swatches = "".join(f'<TD {_SWATCH} BGCOLOR="{c}"> </TD>' for c in TRAINABLE_FILLS[1:])
    frozen = "".join(f'<TD {_SWATCH} BGCOLOR="{c}"> </TD>' for c in FROZEN_FILLS[1:])
    span = len(TRAINABLE_FILLS) - 1
    rows = [
        f'<TR><TD COLSPAN="{span + 1}"><B>legend</B></TD></TR>',
        f'<TR><TD ALIGN="LEFT">trainable</TD>{swatches}</TR>',
        f'<TR><TD ALIGN="LEFT">frozen (dashed)</TD>{frozen}</TR>',
        f'<TR><TD ALIGN="LEFT" COLSPAN="{span + 1}">darker fill, thicker border = larger share of parameters</TD></TR>',
        f'<TR><TD ALIGN="LEFT">no parameters</TD><TD {_SWATCH} BGCOLOR="#ffffff" COLSPAN="{span}"> </TD></TR>',
        f'<TR><TD ALIGN="LEFT">input</TD><TD {_SWATCH} BGCOLOR="{INPUT_FILL}" COLSPAN="{span}"> </TD></TR>',
    ]
    if spec.loss:
        rows.append(f'<TR><TD ALIGN="LEFT">loss</TD><TD {_SWATCH} BGCOLOR="{LOSS_FILL}" COLSPAN="{span}"> </TD></TR>')
    rows.append(f'<TR><TD ALIGN="LEFT" COLSPAN="{span + 1}">double border: model output</TD></TR>')
    if any(e.label.startswith("x") and e.attrs.get("style") == "dashed" for e in diagram.edges):
        rows.append(f'<TR><TD ALIGN="LEFT" COLSPAN="{span + 1}">xN: block drawn once, repeated N times '
                    "(--expand draws every repetition)</TD></TR>")
    if any(n.kind == "fold" for n in diagram.nodes):
        rows.append(f'<TR><TD ALIGN="LEFT" COLSPAN="{span + 1}">3D box: a chain of layers folded into one '
                    "(--expand draws them all)</TD></TR>")
    rows.append(f'<TR><TD ALIGN="LEFT" COLSPAN="{span + 1}">total: '
                f"{_esc(_params_text(analysis.total_params, analysis.non_trainable_params))}</TD></TR>")
    table = '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="2">' + "".join(rows) + "</TABLE>"
    fill, border = SECTION_STYLE["legend"]
    diagram.clusters["legend"] = Cluster("legend", "", None, _cluster_style(fill, border))
    diagram.nodes.append(DrawnNode("legend", table, {"shape": "plaintext", "style": "", "fontsize": "9"}, "legend",
                                   kind="legend"))


# --- formatting: Diagram -> DOT ------------------------------------------------------------------
def _quote(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _attr_list(attrs: dict[str, str]) -> str:
    return ", ".join(f"{k}={_quote(v)}" for k, v in attrs.items())


def _cluster_label(text: str) -> str:
    """Title in bold, details smaller, each line left-justified."""
    if not text:
        return ""
    title, *rest = text.split("\n")
    parts = [f"<B>{_esc(title)}</B>"] + [f'<FONT POINT-SIZE="9">{_esc(line)}</FONT>' for line in rest]
    return "".join(part + '<BR ALIGN="LEFT"/>' for part in parts)


def to_dot(diagram: Diagram) -> str:
    """Format a :class:`Diagram` as DOT text: one statement per line, clusters nested."""
    lines = [
        f"digraph {_quote(diagram.name)} {{",
        f"  graph [{_attr_list({'rankdir': diagram.rankdir, 'fontname': 'Helvetica', 'fontsize': '13', 'labelloc': 't', 'label': diagram.title, 'nodesep': '0.3', 'ranksep': '0.35', 'newrank': 'true', 'compound': 'true', 'bgcolor': 'white'})}];",
        f"  node [{_attr_list({'shape': 'box', 'style': 'rounded,filled', 'fontname': 'Helvetica', 'fontsize': '11', 'margin': '0.12,0.05'})}];",
        f"  edge [{_attr_list({'fontname': 'Helvetica', 'fontsize': '9', 'color': '#666666', 'fontcolor': '#444444', 'arrowsize': '0.7'})}];",
    ]
    children: dict[str | None, list[str]] = {}
    for cluster in diagram.clusters.values():
        children.setdefault(cluster.parent, []).append(cluster.key)
    members: dict[str | None, list[DrawnNode]] = {}
    for node in diagram.nodes:
        key = node.cluster if node.cluster in diagram.clusters else None
        members.setdefault(key, []).append(node)
    ids = {key: f"cluster_{i}" for i, key in enumerate(diagram.clusters)}

    def node_line(node: DrawnNode, indent: str) -> str:
        return f"{indent}{_quote(node.id)} [label=<{node.label}>{', ' + _attr_list(node.attrs) if node.attrs else ''}];"

    def emit(key: str, depth: int) -> None:
        indent = "  " * depth
        cluster = diagram.clusters[key]
        lines.append(f"{indent}subgraph {ids[key]} {{")
        lines.append(f"{indent}  graph [label=<{_cluster_label(cluster.label)}>, {_attr_list(cluster.attrs)}];")
        for node in members.get(key, []):
            lines.append(node_line(node, indent + "  "))
        if cluster.same_rank and len(members.get(key, [])) > 1:
            lines.append(f"{indent}  {{rank=same; {' '.join(_quote(n.id) + ';' for n in members[key])}}}")
        for child in children.get(key, []):
            emit(child, depth + 1)
        lines.append(f"{indent}}}")

    for key in children.get(None, []):
        emit(key, 1)
    for node in members.get(None, []):
        lines.append(node_line(node, "  "))
    for edge in diagram.edges:
        attrs = {"label": f" {edge.label} ", **edge.attrs}
        lines.append(f"  {_quote(edge.src)} -> {_quote(edge.dst)} [{_attr_list(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- writing -------------------------------------------------------------------------------------
def output_format(path: str) -> str:
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    ext = {"gv": "dot"}.get(ext, ext)
    if ext not in FORMATS:
        raise DiagramError(f"cannot tell the format of {path!r}: use a .svg, .png, .pdf or .dot file name")
    return ext


def run_dot(dot_text: str, fmt: str, what: str, timeout: float = DOT_TIMEOUT_S) -> bytes:
    """Draw DOT text with graphviz's ``dot`` in ``fmt`` (svg, png, pdf); ``what`` names the picture in errors.

    Raises :class:`DiagramError` when ``dot`` is missing, fails or takes longer than ``timeout`` seconds.
    """
    exe = shutil.which("dot")
    if exe is None:
        raise DiagramError(f"graphviz's `dot` program was not found, so {what} was not drawn; {INSTALL_HINT}")
    try:
        extra = [f"-Gdpi={PNG_DPI}"] if fmt == "png" else []
        done = subprocess.run([exe, f"-T{fmt}", *extra], input=dot_text.encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise DiagramError(f"graphviz's `dot` took longer than {timeout:g} s on {what}; "
                           "try `--level blocks` for a smaller picture") from None
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DiagramError(f"graphviz's `dot` failed on {what}: {message[0] if message else 'no output'}")
    return done.stdout


def write(dot_text: str, output: str, timeout: float = DOT_TIMEOUT_S) -> str:
    """Write DOT text to ``output`` in the format its extension names; returns the path written."""
    from nnspec.fileio import atomic_write

    fmt = output_format(output)
    if fmt == "dot":
        atomic_write(output, dot_text)
        return output
    if shutil.which("dot") is None:
        dot_path = os.path.splitext(output)[0] + ".dot"
        atomic_write(dot_path, dot_text)
        raise GraphvizMissing(output, dot_path)
    atomic_write(output, run_dot(dot_text, fmt, output, timeout))
    return output


class Drawing(str):
    """A drawn spec, as :func:`nnspec.render` returns it: shows itself as SVG in Jupyter.

    It *is* the DOT text (a ``str``), so code that used ``render()``'s string keeps working; ``.dot`` names it
    explicitly, ``.svg()`` draws it with graphviz, ``.save(path)`` writes .svg/.png/.pdf/.dot. Without graphviz
    the notebook shows a picture that says how to install it (and ``.dot`` still works).
    """

    name: str

    def __new__(cls, dot_text: str, name: str = "model") -> Drawing:
        drawing = super().__new__(cls, dot_text)
        drawing.name = name
        return drawing

    @property
    def dot(self) -> str:
        """The DOT text (graphviz's input language), as a plain ``str``."""
        return str.__str__(self)

    def svg(self, timeout: float = DOT_TIMEOUT_S) -> str:
        """The SVG text, drawn by graphviz; raises :class:`DiagramError` when graphviz is missing or fails."""
        return run_dot(self.dot, "svg", f"the diagram of {self.name}", timeout).decode("utf-8")

    def save(self, path: str | os.PathLike, timeout: float = DOT_TIMEOUT_S) -> str:
        """Write the diagram; the extension picks the format (.svg, .png, .pdf, .dot). Returns the path."""
        return write(self.dot, os.fspath(path), timeout=timeout)

    def _repr_svg_(self) -> str:
        try:
            return self.svg()
        except DiagramError as exc:
            return _message_svg(str(exc))

    def __repr__(self) -> str:
        edges = sum(1 for line in self.dot.splitlines() if "->" in line)
        return f"<nnspec diagram of {self.name!r}: {edges} edges; .dot, .svg(), .save(path)>"


def _message_svg(message: str, width: int = 90) -> str:
    """A small SVG that shows a message (what a notebook displays when graphviz cannot draw)."""
    import textwrap

    lines = textwrap.wrap(message, width)
    height = 20 * len(lines) + 16
    texts = "".join(f'<text x="8" y="{22 + 20 * i}">{html.escape(line)}</text>' for i, line in enumerate(lines))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{8 * width}" height="{height}" '
            f'font-family="sans-serif" font-size="14" fill="#a33">{texts}</svg>')


def render(spec, output: str | None = None, *, level: str = "layers", expand: bool = False,
           rankdir: str = "TB", max_nodes: int = DEFAULT_MAX_NODES, timeout: float = DOT_TIMEOUT_S) -> Drawing:
    """The diagram of a loaded spec (a :class:`Drawing`: the DOT text, shown as SVG in notebooks); also written
    to ``output`` (.svg/.png/.pdf/.dot) when given.

    Raises :class:`GraphvizMissing` (after writing the .dot file beside ``output``) when graphviz
    is needed but not installed, and :class:`DiagramError` for other drawing problems.
    """
    if output is not None:
        output_format(output)  # fail on a bad extension before any work
    drawing = Drawing(to_dot(build_diagram(spec, level=level, expand=expand, rankdir=rankdir, max_nodes=max_nodes)),
                      spec.name)
    if output is not None:
        write(drawing.dot, output, timeout=timeout)
    return drawing
