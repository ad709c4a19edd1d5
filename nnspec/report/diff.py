"""`nnspec diff A B`: what changed between two specs.

Layers are matched structurally, not by their automatic names: both graphs are read in
evaluation (topological) order and aligned as two sequences (a weighted longest common
subsequence, as sequence aligners do), where a pair scores by layer type, shape and
attributes. Matched layers report attribute, shape, parameter, MAC, input and trainability
changes; unmatched ones are added or removed. Loss, train and data settings are compared
key by key. Gathered as data (:class:`SpecDiff`); text and JSON are small formatters.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from nnspec.layers import registry
from nnspec.layers.base import format_shape
from nnspec.pipeline import Spec
from nnspec.spec.graph import Node

MAX_CELLS = 4_000_000  # alignment table size; beyond it, fall back to a greedy match by type


@dataclass
class LayerChange:
    """One layer added, removed or changed (``before``/``after`` are node names; None when absent)."""

    kind: str  # added, removed, changed
    before: str | None
    after: str | None
    layer_type: str
    keras_class: str
    where: str  # spec path in the spec it comes from (B's for changes)
    output_shape: list | None = None  # for added/removed
    params: int = 0  # for added/removed
    changes: dict[str, list] = field(default_factory=dict)  # what -> [before, after]

    @property
    def name(self) -> str:
        return self.after or self.before or ""


@dataclass
class SettingChange:
    """One loss, train or data setting that differs (``None`` = not set)."""

    path: str
    before: object
    after: object


@dataclass
class SpecDiff:
    before: str
    after: str
    before_name: str
    after_name: str
    layers: list[LayerChange]
    settings: list[SettingChange]
    totals: dict[str, list[int]]  # params, trainable_params, non_trainable_params, macs -> [before, after]

    @property
    def equal(self) -> bool:
        return not self.layers and not self.settings and self.before_name == self.after_name

    def to_dict(self) -> dict:
        d = asdict(self)
        d["equal"] = self.equal
        return d


# -- alignment ------------------------------------------------------------------------------
def _family(node: Node) -> str:
    try:
        return registry.get(node.type).family
    except KeyError:
        return node.type


def _score(a: Node, b: Node, ia, ib) -> float:
    """How alike two layers are; 0 means they are never paired."""
    if a.is_input != b.is_input:
        return 0.0
    if a.type != b.type:
        return 1.0 if _family(a) == _family(b) else 0.0
    score = 4.0
    if ia.output_shape == ib.output_shape:
        score += 1.0
    if a.attrs == b.attrs:
        score += 1.0
    if a.name == b.name:
        score += 0.5
    return score


def align(a: Spec, b: Spec) -> list[tuple[str | None, str | None]]:
    """Pairs (name in A, name in B) in order; None on one side for removed/added layers."""
    na, nb = list(a.graph.nodes.values()), list(b.graph.nodes.values())
    ia, ib = a.analysis.nodes, b.analysis.nodes  # type: ignore[attr-defined]
    if len(na) * len(nb) > MAX_CELLS:
        return _greedy(na, nb)
    n, m = len(na), len(nb)
    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row, below = best[i], best[i + 1]
        for j in range(m - 1, -1, -1):
            s = _score(na[i], nb[j], ia[na[i].name], ib[nb[j].name])
            take = below[j + 1] + s if s > 0 else -1.0
            row[j] = max(take, below[j], row[j + 1])
    pairs: list[tuple[str | None, str | None]] = []
    i = j = 0
    while i < n and j < m:
        s = _score(na[i], nb[j], ia[na[i].name], ib[nb[j].name])
        if s > 0 and best[i][j] == best[i + 1][j + 1] + s:
            pairs.append((na[i].name, nb[j].name))
            i, j = i + 1, j + 1
        elif best[i][j] == best[i + 1][j]:
            pairs.append((na[i].name, None))
            i += 1
        else:
            pairs.append((None, nb[j].name))
            j += 1
    pairs += [(x.name, None) for x in na[i:]] + [(None, y.name) for y in nb[j:]]
    return pairs


def _greedy(na: list[Node], nb: list[Node]) -> list[tuple[str | None, str | None]]:
    pairs: list[tuple[str | None, str | None]] = []
    j = 0
    for x in na:
        k = next((k for k in range(j, len(nb)) if nb[k].type == x.type), None)
        if k is None:
            pairs.append((x.name, None))
            continue
        pairs += [(None, y.name) for y in nb[j:k]] + [(x.name, nb[k].name)]
        j = k + 1
    return pairs + [(None, y.name) for y in nb[j:]]


# -- comparison -----------------------------------------------------------------------------
def _path(node: Node) -> str:
    from nnspec.spec.loader import format_path

    return format_path(node.path) + (f" as {node.block}" if node.block else "")


def _layer_changes(a: Spec, b: Spec, pairs) -> list[LayerChange]:
    ia, ib = a.analysis.nodes, b.analysis.nodes  # type: ignore[attr-defined]
    renamed = {x: y for x, y in pairs if x and y}
    out = []
    for x, y in pairs:
        if x and y:
            na, nb = a.graph.nodes[x], b.graph.nodes[y]
            changes: dict[str, list] = {}
            if na.type != nb.type:
                changes["type"] = [na.type, nb.type]
            for key in sorted(set(na.attrs) | set(nb.attrs)):
                if na.attrs.get(key) != nb.attrs.get(key):
                    changes[key] = [na.attrs.get(key), nb.attrs.get(key)]
            if ia[x].output_shape != ib[y].output_shape:
                changes["shape"] = [list(ia[x].output_shape), list(ib[y].output_shape)]
            if ia[x].param_count != ib[y].param_count:
                changes["params"] = [ia[x].param_count, ib[y].param_count]
            if ia[x].macs != ib[y].macs:
                changes["macs"] = [ia[x].macs, ib[y].macs]
            if _inputs(a, na, set(renamed), renamed) != _inputs(b, nb, set(renamed.values())):
                changes["inputs"] = [list(na.inputs), list(nb.inputs)]
            if na.trainable != nb.trainable:
                changes["trainable"] = [na.trainable, nb.trainable]
            if changes:
                out.append(LayerChange("changed", x, y, nb.type, registry.get(nb.type).keras_class, _path(nb),
                                       changes=changes))
        else:
            spec, name, kind = (b, y, "added") if y else (a, x, "removed")
            node, info = spec.graph.nodes[name], spec.analysis.nodes[name]  # type: ignore[attr-defined]
            out.append(LayerChange(kind, x, y, node.type, registry.get(node.type).keras_class, _path(node),
                                   output_shape=list(info.output_shape), params=info.param_count))
    return out


def _inputs(spec: Spec, node: Node, matched: set[str], rename: dict | None = None) -> list[str]:
    """A layer's inputs, skipping over inserted or removed single-input layers, renamed to B's names."""
    out = []
    for name in node.inputs:
        while name not in matched and len(spec.graph.nodes[name].inputs) == 1:
            name = spec.graph.nodes[name].inputs[0]
        out.append((rename or {}).get(name, name))
    return out


def _flatten(value, prefix: str, out: dict) -> dict:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    else:
        out[prefix] = value
    return out


def _settings(spec: Spec) -> dict:
    s: dict = {}
    losses = spec.losses()
    if len(losses) == 1:
        _flatten(next(iter(losses.values())), "loss", s)
    else:
        _flatten(losses, "loss", s)
    _flatten(spec.train, "train", s)
    _flatten(spec.data, "data", s)
    return {k: v for k, v in s.items() if v != {}}


def _setting_changes(a: Spec, b: Spec) -> list[SettingChange]:
    sa, sb = _settings(a), _settings(b)
    keys = list(dict.fromkeys([*sa, *sb]))
    sections = ("loss", "train", "data")
    keys.sort(key=lambda k: sections.index(k.split(".")[0]) if k.split(".")[0] in sections else len(sections))
    return [SettingChange(k, sa.get(k), sb.get(k)) for k in keys if sa.get(k) != sb.get(k)]


def diff_specs(a: Spec, b: Spec) -> SpecDiff:
    """Everything that differs between two checked specs: layers (aligned), settings and totals."""
    pairs = align(a, b)
    ta, tb = a.analysis, b.analysis
    totals = {
        "params": [ta.total_params, tb.total_params],  # type: ignore[attr-defined]
        "trainable_params": [ta.trainable_params, tb.trainable_params],  # type: ignore[attr-defined]
        "non_trainable_params": [ta.non_trainable_params, tb.non_trainable_params],  # type: ignore[attr-defined]
        "macs": [ta.total_macs, tb.total_macs],  # type: ignore[attr-defined]
    }
    return SpecDiff(a.path, b.path, a.name, b.name, _layer_changes(a, b, pairs), _setting_changes(a, b), totals)


# -- formatting -----------------------------------------------------------------------------
def _value(v) -> str:
    if v is None:
        return "(unset)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return format_shape(tuple(v)) if v and v[0] is None else json.dumps(v)
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _describe(c: LayerChange) -> str:
    if c.kind in ("added", "removed"):
        sign = "+" if c.kind == "added" else "-"
        return (f"{sign} {c.name} ({c.keras_class}, {c.where}) {format_shape(tuple(c.output_shape or ()))}, "
                f"{c.params:,} params")
    label = c.after if c.before == c.after else f"{c.before} -> {c.after}"
    parts = []
    for key, (x, y) in c.changes.items():
        if key == "params":
            parts.append(f"params {x:,} -> {y:,} ({y - x:+,})")
        elif key == "inputs":
            parts.append(f"inputs {', '.join(x) or '-'} -> {', '.join(y) or '-'}")
        else:
            parts.append(f"{key} {_value(x)} -> {_value(y)}")
    return f"~ {label} ({c.keras_class}, {c.where}): " + "; ".join(parts)


def format_text(d: SpecDiff) -> str:
    if d.equal:
        return f"{d.before} and {d.after}: no differences ({d.after_name}: same layers, settings and totals)"
    counts = {k: sum(1 for c in d.layers if c.kind == k) for k in ("changed", "added", "removed")}
    head = (f"{d.before_name} -> {d.after_name}: {counts['changed']} layer(s) changed, {counts['added']} added, "
            f"{counts['removed']} removed; {len(d.settings)} setting(s) changed")
    lines = [head]
    if d.layers:
        lines.append("layers (matched by structure, in order):")
        lines += [f"  {_describe(c)}" for c in d.layers]
    if d.settings:
        lines.append("settings:")
        lines += [f"  ~ {s.path}: {_value(s.before)} -> {_value(s.after)}" for s in d.settings]
    t = d.totals
    lines.append("totals:")
    for key, label in (("params", "params"), ("trainable_params", "trainable"), ("macs", "MACs")):
        x, y = t[key]
        lines.append(f"  {label} {x:,} -> {y:,} ({y - x:+,}{_percent(x, y)})")
    return "\n".join(lines)


def _percent(x: int, y: int) -> str:
    return f", {(y - x) / x:+.1%}" if x else ""


def format_json(d: SpecDiff) -> str:
    return json.dumps(d.to_dict(), indent=2, default=str)
