"""Repeated blocks in a flat list of layers, written once: what ``nnspec import`` uses to turn the
hundreds of layers of a Keras model into a spec a person can read.

A *run* is ``k >= 2`` consecutive segments of ``p`` layers that are the same network piece: the same
layer types and attributes, the same wiring relative to the segment (a layer reads a layer of its own
segment, the segment's input -- the layer just before it -- or one fixed layer outside), and names
that differ only by a prefix that counts (``conv2_block2_``, ``conv2_block3_``: ``${repeat_index +
2}``; ``block2b_``, ``block2c_``: ``${letter(repeat_index + 1)}``). A float attribute may grow by a
constant step from one segment to the next (stochastic depth rates); every other attribute is equal.
A run becomes one block use with ``repeat: k`` and ``prefix:``.

Runs with the same layers and wiring but other numbers (a ResNet stage with 64 filters, the next with
128) share one block definition whose differing numbers are parameters; a parameter that is always a
whole multiple of another is written as that multiple (``"${4 * filters}"``).

Runs are chosen to save the most lines (weighted interval scheduling over every candidate). Nothing
here checks the result against the flat list: the caller expands both and compares (see
:func:`same_graph`), and keeps the flat list when they differ.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from nnspec.spec.graph import Graph

MAX_PERIOD = 80  # layers in one repeated segment (a NASNet cell has ~60)
MIN_SAVING = 1  # lines a run must save to be folded


@dataclass(frozen=True)
class FlatLayer:
    """One layer of a flat section, as the spec would write it."""

    kind: str  # catalog type
    attrs: dict[str, Any]  # written attributes, without `name` and `inputs`
    name: str  # the node's name
    named: bool  # whether the spec writes the name (else nnspec's automatic name gives it)
    refs: tuple[str, ...]  # the nodes it reads, in order


@dataclass
class Folded:
    """A section with its repeated runs folded: block definitions and the section's items."""

    blocks: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {params?, layers}
    items: list[dict[str, Any]] = field(default_factory=list)  # `{kind: attrs}` layers and `{block: use}`


@dataclass(frozen=True)
class _Run:
    start: int
    period: int
    count: int

    @property
    def end(self) -> int:
        return self.start + self.period * self.count


@dataclass
class _Template:
    """One run, as a block: per layer its type, local name, written inputs and attribute values.

    An attribute value is ``("const", v)`` or ``("seq", v0, step)`` (``v0 + step * repeat_index``).
    """

    run: _Run
    prefix: str | None  # the use's prefix template (None: no named layers)
    layers: list[tuple[str, str | None, Any, dict[str, tuple]]]  # (kind, local name, inputs or None, attrs)

    def structure(self) -> tuple:
        """What must be equal for two runs to share a block definition."""
        out = []
        for kind, local, inputs, attrs in self.layers:
            fixed = tuple(sorted((k, _key(v[1])) for k, v in attrs.items() if not _numeric(v)))
            variable = tuple(sorted((k, v[2] if v[0] == "seq" else 0.0, len(v[1]) if isinstance(v[1], list) else -1)
                                    for k, v in attrs.items() if _numeric(v)))
            out.append((kind, local, _key(inputs), fixed, variable))
        return tuple(out)


def _numeric(value: tuple) -> bool:
    """Whether an attribute value may differ between runs that share a block (then it is a parameter, or
    a list with parameters in it)."""
    if value[0] == "seq":
        return True
    v = value[1]
    if isinstance(v, list):
        return bool(v) and all(_number(x) for x in v)
    return _number(v)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _key(value: Any) -> str:
    return repr(value)


def fold(layers: list[FlatLayer], first_input: str | None) -> Folded:
    """The section ``layers`` (whose first layer's implicit input is ``first_input``) with its repeated
    runs written as blocks; a list without runs comes back as plain layer items."""
    templates = _choose_runs(layers, first_input)
    folded = Folded()
    uses = _define_blocks(templates, folded.blocks)
    by_start = {template.run.start: template.run for template in templates}
    plain = flat_items(layers, first_input)
    i = 0
    while i < len(layers):
        run = by_start.get(i)
        if run is not None:
            folded.items.append({"block": uses[run]})
            i = run.end
            continue
        folded.items.append(plain[i])
        i += 1
    return folded


def flat_items(layers: list[FlatLayer], first_input: str | None) -> list[dict[str, Any]]:
    """The section written flat: one item per layer, in order."""
    return [layer_item(layer, _prev(layers, i, first_input)) for i, layer in enumerate(layers)]


def layer_item(layer: FlatLayer, prev: str | None) -> dict[str, Any]:
    """``{kind: attrs}`` for a layer outside any block: its name when written, its inputs unless it reads
    the layer before it."""
    attrs: dict[str, Any] = {}
    if layer.named:
        attrs["name"] = layer.name
    attrs.update(layer.attrs)
    refs = list(layer.refs)
    if refs != ([prev] if prev else []):
        attrs["inputs"] = refs[0] if len(refs) == 1 else refs
    return {layer.kind: attrs or None}


def _prev(layers: list[FlatLayer], i: int, first_input: str | None) -> str | None:
    return layers[i - 1].name if i > 0 else first_input


# -- finding runs -----------------------------------------------------------------------------------
def _choose_runs(layers: list[FlatLayer], first_input: str | None) -> list[_Template]:
    """The runs to fold, as blocks: for every start and period the longest run whose names and numbers
    follow from the repetition, then the set of non-overlapping runs that saves the most lines."""
    n = len(layers)
    pos = {layer.name: i for i, layer in enumerate(layers)}
    static = [_static_key(layer) for layer in layers]

    def ref_key(j: int, start: int) -> tuple:
        out: list[tuple[Any, ...]] = []
        for r in layers[j].refs:
            q = pos.get(r)
            if q is not None and start <= q < j:
                out.append(("L", j - q))
            elif (q is not None and q == start - 1) or (q is None and start == 0 and r == first_input):
                out.append(("IN",))
            else:
                out.append(("G", r))
        return tuple(out)

    def same(a: int, b: int, p: int) -> bool:
        return all(static[a + t] == static[b + t] and ref_key(a + t, a) == ref_key(b + t, b) for t in range(p))

    candidates: list[list[_Template]] = [[] for _ in range(n)]
    for i in range(n):
        for p in range(1, min(MAX_PERIOD, (n - i) // 2) + 1):
            if static[i] != static[i + p]:
                continue
            k = 1
            while i + (k + 1) * p <= n and same(i, i + k * p, p):
                k += 1
            run = _Run(i, p, k)
            while run.count >= 2 and _saving(run) >= MIN_SAVING:  # the longest run that can be written
                template = _template(layers, run, first_input)
                if template is not None:
                    candidates[i].append(template)
                    break
                run = _Run(i, p, run.count - 1)
    best = [0] * (n + 1)
    choice: list[_Template | None] = [None] * (n + 1)
    for i in range(n - 1, -1, -1):
        best[i], choice[i] = best[i + 1], None
        for template in candidates[i]:
            total = _saving(template.run) + best[template.run.end]
            if total > best[i]:
                best[i], choice[i] = total, template
    chosen: list[_Template] = []
    i = 0
    while i < n:
        picked = choice[i]
        if picked is None:
            i += 1
        else:
            chosen.append(picked)
            i = picked.run.end
    return chosen


def _saving(run: _Run) -> int:
    """Lines saved: k*p layer lines become p lines of definition, its header (3) and one use."""
    return run.period * (run.count - 1) - 4


def _static_key(layer: FlatLayer) -> tuple:
    """A layer's type, whether it is named, and its attributes (floats only by kind: they may grow)."""
    attrs = tuple(sorted((k, "float" if isinstance(v, float) else _key(v)) for k, v in layer.attrs.items()))
    return layer.kind, layer.named, attrs


# -- one run as a block -----------------------------------------------------------------------------
def _template(layers: list[FlatLayer], run: _Run, first_input: str | None) -> _Template | None:
    """The run as a block, or None when its names or numbers do not follow from the repetition."""
    p, k = run.period, run.count
    segments = [layers[run.start + m * p: run.start + (m + 1) * p] for m in range(k)]
    naming = _names(segments)
    if naming is None:
        return None
    prefix, written_names, referable = naming
    # wiring, written in the block's terms
    start = run.start
    index = {layer.name: t for t, layer in enumerate(segments[0])}
    before = _prev(layers, start, first_input)
    out_layers = []
    for t, layer in enumerate(segments[0]):
        refs: list[str] = []
        for r in layer.refs:
            if r in index and index[r] < t:
                if index[r] == t - 1:
                    refs.append("$prev")
                elif referable[index[r]] is not None:
                    refs.append(referable[index[r]] or "")
                else:
                    return None  # a layer read from further back has no fixed name in the block
            elif r == before:
                refs.append("$input")
            else:
                refs.append(r)
        implicit = "$input" if t == 0 else "$prev"
        if refs == [implicit]:
            inputs: Any = None
        else:
            shown = [referable[t - 1] if r == "$prev" and referable[t - 1] else r for r in refs]
            inputs = shown[0] if len(shown) == 1 else shown
        attrs: dict[str, tuple] = {}
        for key, value in layer.attrs.items():
            values = [segment[t].attrs[key] for segment in segments]
            if all(v == value for v in values):
                attrs[key] = ("const", value)
                continue
            step = _step(values)
            if step is None:
                return None
            attrs[key] = ("seq", _pretty(values[0]), step)
        out_layers.append((layer.kind, written_names[t], inputs, attrs))
    return _Template(run, prefix, out_layers)


def _names(segments: list[list[FlatLayer]]) -> tuple[str | None, list[str | None], list[str | None]] | None:
    """How a run's layers are named in the block: (the use's prefix, each layer's written name, the name
    a layer of the block reads it by), or None when the names do not follow from the repetition.

    Either every segment's named layers share a prefix that counts and the rest of each name is the same
    in every segment (``conv2_block2_1_conv``: prefix ``conv2_block${repeat_index + 2}_``, name ``1_conv``),
    or, with an empty prefix, each layer's own name counts (``conv_dw_2``, ``conv_dw_3``: ``conv_dw_${...}``;
    such a layer is read only as the previous one, as its name changes).
    """
    k, p = len(segments), len(segments[0])
    named = [segments[0][t].named for t in range(p)]
    if not any(named):
        return None, [None] * p, [None] * p
    prefixes: list[str] = []
    for segment in segments:
        common = os.path.commonprefix([layer.name for layer in segment if layer.named])
        prefixes.append(common[:common.rfind("_") + 1])
    rests = [[layer.name[len(prefixes[m]):] if layer.named else None for layer in segment]
             for m, segment in enumerate(segments)]
    if all(prefixes) and all(r == rests[0] for r in rests) and "" not in rests[0]:
        prefix = _counting_template(prefixes)
        if prefix is not None:
            return prefix, rests[0], rests[0]
    templates: list[str | None] = []
    for t in range(p):
        if not named[t]:
            templates.append(None)
            continue
        template = _counting_template([segments[m][t].name for m in range(k)])
        if template is None:
            return None
        templates.append(template)
    return "", templates, [None] * p


def _step(values: list[Any]) -> float | None:
    """The constant step of floats that grow by it (``values[m] == values[0] + m * step``), else None."""
    if not all(isinstance(v, float) for v in values):
        return None
    step = _pretty((values[-1] - values[0]) / (len(values) - 1))
    first = _pretty(values[0])
    for m, v in enumerate(values):
        if not math.isclose(first + m * step, v, rel_tol=1e-9, abs_tol=1e-12):
            return None
    return step


def _pretty(x: float) -> float:
    """``x`` with the fewest decimals that keep it within 1e-12 (0.07500000000000001 -> 0.075)."""
    for digits in range(1, 17):
        rounded = round(x, digits)
        if math.isclose(rounded, x, rel_tol=1e-12, abs_tol=1e-15):
            return rounded
    return x


def _counting_template(texts: list[str]) -> str | None:
    """``["conv2_block2_", "conv2_block3_"]`` -> ``"conv2_block${repeat_index + 2}_"``; letters count
    with ``letter()``; None when the texts do not count."""
    common = os.path.commonprefix(texts)
    # whole numbers: the common part stops before the number's first digit
    head = common.rstrip("0123456789")
    rests = [t[len(head):] for t in texts]
    tail = _common_suffix(rests).lstrip("0123456789")
    middles = [r[:len(r) - len(tail)] for r in rests]
    if all(re.fullmatch(r"0|[1-9][0-9]*", m) for m in middles):
        numbers = [int(m) for m in middles]
        step = numbers[1] - numbers[0]
        if step > 0 and all(v == numbers[0] + m * step for m, v in enumerate(numbers)):
            return f"{head}${{{_linear(numbers[0], step)}}}{tail}"
    rests = [t[len(common):] for t in texts]
    tail = _common_suffix(rests)
    middles = [r[:len(r) - len(tail)] for r in rests]
    if all(re.fullmatch(r"[a-z]", m) for m in middles):
        first = ord(middles[0]) - ord("a")
        if all(ord(m) - ord("a") == first + i for i, m in enumerate(middles)):
            return f"{common}${{letter({_linear(first, 1)})}}{tail}"
    return None


def _linear(first: int, step: int) -> str:
    counter = "repeat_index" if step == 1 else f"{step} * repeat_index"
    return counter if first == 0 else f"{counter} + {first}"


def _common_suffix(texts: list[str]) -> str:
    reversed_common = os.path.commonprefix([t[::-1] for t in texts])
    return reversed_common[::-1]


# -- block definitions ------------------------------------------------------------------------------
def _define_blocks(templates: list[_Template], blocks: dict[str, dict[str, Any]]) -> dict[_Run, dict[str, Any]]:
    """Block definitions for the runs (one per structure, numbers that differ as parameters) and each
    run's block use."""
    groups: dict[tuple, list[_Template]] = {}
    for template in templates:
        groups.setdefault(template.structure(), []).append(template)
    uses: dict[_Run, dict[str, Any]] = {}
    for members in groups.values():
        name = _block_name(members[0], blocks)
        params, slots = _parameters(members)
        first = members[0]
        layers = []
        for t, (kind, local, inputs, attrs) in enumerate(first.layers):
            item: dict[str, Any] = {}
            if local is not None:
                item["name"] = local
            for key, value in attrs.items():
                item[key] = slots.get((t, key), _literal(value))
            if inputs is not None:
                item["inputs"] = inputs
            layers.append({kind: item or None})
        definition: dict[str, Any] = {}
        if params:
            definition["params"] = {p: values[0] for p, values in params.items()}
        definition["layers"] = layers
        blocks[name] = definition
        for m, template in enumerate(members):
            use: dict[str, Any] = {"use": name}
            if template.run.count > 1:
                use["repeat"] = template.run.count
            if template.prefix is not None:
                use["prefix"] = template.prefix
            given = {p: values[m] for p, values in params.items() if values[m] != values[0]}
            if given:
                use["with"] = given
            uses[template.run] = use
    return uses


def _reference(expression: str) -> str:
    """``filters`` -> ``$filters``; ``4 * filters`` -> ``${4 * filters}``."""
    return f"${expression}" if expression.isidentifier() else f"${{{expression}}}"


def _literal(value: tuple) -> Any:
    if value[0] == "const":
        return value[1]
    return f"${{{value[1]!r} + {value[2]!r} * repeat_index}}"


def _parameters(members: list[_Template]) -> tuple[dict[str, list[Any]], dict[tuple[int, str], Any]]:
    """(parameter -> its value in each run, (layer, attribute) -> what the definition writes) for the
    numbers that differ between the runs sharing a definition."""
    params: dict[str, list[Any]] = {}
    slots: dict[tuple[int, str], Any] = {}
    first = members[0]
    for t, (_, _, _, attrs) in enumerate(first.layers):
        for key, value in attrs.items():
            if not _numeric(value):
                continue
            described = [m.layers[t][3][key] for m in members]
            bases = [v[1] for v in described]
            if all(b == bases[0] for b in bases):
                continue  # the same in every run: written as is
            if isinstance(bases[0], list):  # a list of numbers: the elements that differ become parameters
                elements = []
                for e, element in enumerate(bases[0]):
                    column = [b[e] for b in bases]
                    elements.append(element if all(c == element for c in column) else
                                    _reference(_as_parameter(key, column, params)))
                slots[(t, key)] = elements
                continue
            expression = _as_parameter(key, bases, params)
            step = value[2] if value[0] == "seq" else 0.0  # the same in every run (part of the structure)
            if step:
                slots[(t, key)] = f"${{{expression} + {step!r} * repeat_index}}"
            else:
                slots[(t, key)] = _reference(expression)
    return params, slots


def _as_parameter(key: str, values: list[Any], params: dict[str, list[Any]]) -> str:
    """An expression for ``values`` (one per run): an existing parameter with the same values, a whole
    multiple of one, or a new parameter named after the attribute."""
    for name, have in params.items():
        if have == values:
            return name
    for name, have in params.items():
        if all(isinstance(v, int) and not isinstance(v, bool) and isinstance(h, int) and h for v, h in
               zip(values, have, strict=True)) and values[0] % have[0] == 0:
            factor = values[0] // have[0]
            if factor > 1 and all(v == factor * h for v, h in zip(values, have, strict=True)):
                return f"{factor} * {name}"
    name, n = key, 2
    while name in params:
        name, n = f"{key}{n}", n + 1
    params[name] = values
    return name


def _block_name(template: _Template, blocks: dict[str, Any]) -> str:
    """A name from the prefix's words (`conv2_block${...}_` -> `block`), or from the first layer name's
    (`conv_dw_${...}` -> `dw`), unique among the blocks."""
    named = [local for _, local, _, _ in template.layers if local]
    words = re.findall(r"[A-Za-z]+", (template.prefix or (named[0] if named else "")).split("${")[0])
    base = words[-1].lower() if words else "repeated"
    name, n = base, 2
    while name in blocks:
        name, n = f"{base}{n}", n + 1
    return name


# -- checking a fold --------------------------------------------------------------------------------
def same_graph(a: Graph, b: Graph) -> str | None:
    """None when two expanded graphs have the same nodes (names, types, inputs, attributes; floats
    within 1e-9), else the first difference, in words."""
    if list(a.nodes) != list(b.nodes):
        missing = [n for n in a.nodes if n not in b.nodes][:3]
        extra = [n for n in b.nodes if n not in a.nodes][:3]
        return f"different layers (missing {missing}, extra {extra})" if missing or extra else "different order"
    for name, node in a.nodes.items():
        other = b.nodes[name]
        if (node.type, node.inputs, node.trainable) != (other.type, other.inputs, other.trainable):
            return f"`{name}`: {node.type} {node.inputs} vs {other.type} {other.inputs}"
        if not _close(node.attrs, other.attrs):
            return f"`{name}`: attributes {node.attrs} vs {other.attrs}"
    if (a.inputs, a.outputs, a.heads) != (b.inputs, b.outputs, b.heads):
        return "different inputs or outputs"
    return None


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
