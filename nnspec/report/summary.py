"""Model summaries: rows gathered as data first, then one small formatter per format.

The table follows Keras 3's ``model.summary()``: same names, types, shapes, counts and
totals lines (sizes as Keras prints them: parameters x 4 bytes, in units of 1024).
"""

from __future__ import annotations

import json
import shutil
import textwrap
from dataclasses import asdict, dataclass, field

from nnspec.layers import registry
from nnspec.layers.base import format_shape


@dataclass
class Row:
    name: str
    keras_class: str
    layer_type: str
    output_shape: tuple
    params: int
    trainable_params: int
    non_trainable_params: int
    macs: int
    activations: int  # output elements per example
    connected_to: list[str] = field(default_factory=list)
    section: str = ""
    block: str | None = None
    trainable: bool = True


@dataclass(repr=False)
class Summary:
    """A model's summary rows and totals; prints as the Keras-style table, shows as an HTML table in notebooks."""

    model_name: str
    rows: list[Row]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    total_macs: int
    sequential: bool
    outputs: dict[str, tuple]

    @property
    def total_bytes(self) -> int:
        return self.total_params * 4

    def __str__(self) -> str:
        return format_table(self)

    __repr__ = __str__  # the REPL and notebooks' plain-text view show the table, not the dataclass fields

    def _repr_html_(self) -> str:
        return format_html(self)

    def to_dict(self) -> dict:
        d = asdict(self)
        for r in d["rows"]:
            r["output_shape"] = list(r["output_shape"])
        d["outputs"] = {k: list(v) for k, v in self.outputs.items()}
        d["sizes"] = {
            "total": readable_size(self.total_params * 4),
            "trainable": readable_size(self.trainable_params * 4),
            "non_trainable": readable_size(self.non_trainable_params * 4),
        }
        return d


def summarize(spec) -> Summary:
    """Gather the summary rows of a loaded spec."""
    graph, analysis = spec.graph, spec.analysis
    rows = []
    for node in graph.nodes.values():
        info = analysis.nodes[node.name]
        cls = registry.get(node.type)
        rows.append(
            Row(
                name=node.name,
                keras_class=cls.keras_class,
                layer_type=node.type,
                output_shape=info.output_shape,
                params=info.param_count,
                trainable_params=info.trainable_count,
                non_trainable_params=info.non_trainable_count,
                macs=info.macs,
                activations=info.activation_size,
                connected_to=[f"{i}[0][0]" for i in node.inputs],
                section=node.section,
                block=node.block,
                trainable=node.trainable,
            )
        )
    return Summary(
        model_name=graph.name,
        rows=rows,
        total_params=analysis.total_params,
        trainable_params=analysis.trainable_params,
        non_trainable_params=analysis.non_trainable_params,
        total_macs=analysis.total_macs,
        sequential=graph.is_sequential(),
        outputs=analysis.output_shapes(),
    )


def readable_size(n_bytes: float) -> str:
    """Keras's readable_memory_size: 872232 -> '851.79 KB'."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n_bytes / 1024 < 1:
            return f"{n_bytes:.2f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.2f} PB"


def totals_lines(s: Summary) -> list[str]:
    return [
        f" Total params: {s.total_params:,} ({readable_size(s.total_params * 4)})",
        f" Trainable params: {s.trainable_params:,} ({readable_size(s.trainable_params * 4)})",
        f" Non-trainable params: {s.non_trainable_params:,} ({readable_size(s.non_trainable_params * 4)})",
    ]


def human(n: int) -> str:
    value: float = n
    for unit in ("", "K", "M", "G", "T"):
        if abs(value) < 1000:
            return f"{value:.3g}{unit}" if unit else str(n)
        value /= 1000
    return f"{value:.3g}P"


def _columns(s: Summary, macs: bool, memory: bool):
    header = ["Layer (type)", "Output Shape", "Param #"]
    align = ["left", "left", "right"]
    positions = [0.45, 0.80, 1.0]
    length = 88
    if not s.sequential:
        header.append("Connected to")
        align.append("left")
        positions = [0.3, 0.56, 0.74, 1.0]
        length = 108
    extra = []
    if macs:
        extra.append(("MACs", "right"))
    if memory:
        extra.append(("Activations", "right"))
    if extra:
        scale = length / (length + 14 * len(extra))
        positions = [p * scale for p in positions] + [
            (length + 14 * (i + 1)) / (length + 14 * len(extra)) for i in range(len(extra))
        ]
        length += 14 * len(extra)
        header += [e[0] for e in extra]
        align += [e[1] for e in extra]
    return header, align, positions, length


def _cells(s: Summary, row: Row, macs: bool, memory: bool) -> list[str]:
    cells = [f"{row.name} ({row.keras_class})", format_shape(row.output_shape), f"{row.params:,}"]
    if not s.sequential:
        cells.append(", ".join(row.connected_to) or "-")
    if macs:
        cells.append(human(row.macs))
    if memory:
        cells.append(human(row.activations))
    return cells


def format_table(s: Summary, macs: bool = False, memory: bool = False, sections: bool = False,
                 width: int | None = None) -> str:
    """The Keras-style box table with the totals lines."""
    header, align, positions, default_length = _columns(s, macs, memory)
    length = width or min(default_length, max(shutil.get_terminal_size((80, 24)).columns - 4, 40))
    bounds = [int(p * length) for p in positions]
    widths = [b - a for a, b in zip([0, *bounds[:-1]], bounds, strict=False)]
    inner = [max(w - 3, 4) for w in widths]  # cell text width: border + one space each side
    for i, text in enumerate(header):  # a header never breaks the borders: widen its column, narrow the widest
        while inner[i] < len(text):
            widest = max((j for j in range(len(inner)) if j != i), key=lambda j: inner[j])
            if inner[widest] <= len(header[widest]) + 2:
                inner[i] = len(text)  # no room to take: the table grows instead
                break
            inner[widest] -= 1
            inner[i] += 1

    def fmt_line(cells: list[str]) -> list[str]:
        wrapped = []
        for text, w in zip(cells, inner, strict=False):
            parts = textwrap.wrap(text, w, break_long_words=False, break_on_hyphens=False) or [""]
            parts = [p if len(p) <= w else p[: w - 1] + "…" for p in parts]
            wrapped.append(parts)
        height = max(len(p) for p in wrapped)
        out = []
        for i in range(height):
            row = []
            for parts, w, a in zip(wrapped, inner, align, strict=False):
                t = parts[i] if i < len(parts) else ""
                row.append(t.rjust(w) if a == "right" else t.ljust(w))
            out.append("│ " + " │ ".join(row) + " │")
        return out

    def rule(left: str, mid: str, right: str, fill: str) -> str:
        return left + mid.join(fill * (w + 2) for w in inner) + right

    lines = [f'Model: "{s.model_name}"', rule("┏", "┳", "┓", "━")]
    head = []
    for text, w, a in zip(header, inner, align, strict=False):
        head.append(text.rjust(w) if a == "right" else text.ljust(w))
    lines.append("┃ " + " ┃ ".join(head) + " ┃")
    lines.append(rule("┡", "╇", "┩", "━"))
    current = None
    for i, row in enumerate(s.rows):
        if sections and row.section != current:
            current = row.section
            title = f" {current} "
            total = sum(inner) + 3 * len(inner) - 1
            lines.append("│" + title.center(total, "·") + "│")
        lines.extend(fmt_line(_cells(s, row, macs, memory)))
        if i < len(s.rows) - 1:
            lines.append(rule("├", "┼", "┤", "─"))
    lines.append(rule("└", "┴", "┘", "─"))
    lines.extend(totals_lines(s))
    if macs:
        lines.append(f" Total MACs per example: {s.total_macs:,} ({human(s.total_macs)})")
    return "\n".join(lines)


def format_markdown(s: Summary, macs: bool = False, memory: bool = False, sections: bool = False) -> str:
    header, align, _, _ = _columns(s, macs, memory)
    if sections:
        header = ["Section", *header]
        align = ["left", *align]
    lines = [f"**Model: {s.model_name}**", "", "| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if a == "right" else "---" for a in align) + "|"]
    for row in s.rows:
        cells = _cells(s, row, macs, memory)
        cells[0] = f"`{row.name}` ({row.keras_class})"
        if sections:
            cells = [row.section, *cells]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    lines.extend(line.strip() + "  " for line in totals_lines(s))
    if macs:
        lines.append(f"Total MACs per example: {s.total_macs:,}  ")
    return "\n".join(lines)


def format_html(s: Summary, macs: bool = False, memory: bool = False) -> str:
    """An HTML table (what Jupyter shows for a :class:`Summary`): the same columns and totals as the text table."""
    from html import escape

    header, align, _, _ = _columns(s, macs, memory)

    def cell(tag: str, text: str, side: str) -> str:
        return f'<{tag} style="text-align:{side}">{escape(text)}</{tag}>'

    lines = ['<table class="nnspec-summary">', f"<caption>Model: <b>{escape(s.model_name)}</b></caption>",
             "<thead><tr>" + "".join(cell("th", h, a) for h, a in zip(header, align, strict=True)) + "</tr></thead>",
             "<tbody>"]
    for row in s.rows:
        cells = _cells(s, row, macs, memory)
        lines.append("<tr>" + "".join(cell("td", c, a) for c, a in zip(cells, align, strict=True)) + "</tr>")
    lines.append("</tbody></table>")
    lines.append("<p>" + "<br>".join(escape(t.strip()) for t in totals_lines(s)) + "</p>")
    return "\n".join(lines)


def format_json(s: Summary) -> str:
    return json.dumps(s.to_dict(), indent=2)
