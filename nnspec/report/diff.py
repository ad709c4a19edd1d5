"""`nnspec diff A B`: what changed between two specs — layers, shapes, parameters, MACs."""

from __future__ import annotations

from dataclasses import dataclass

from nnspec.layers.base import format_shape
from nnspec.report.summary import Row, Summary


@dataclass
class Change:
    kind: str  # added, removed, changed
    name: str
    before: Row | None
    after: Row | None

    def describe(self) -> str:
        if self.kind == "added":
            r = self.after
            return f"+ {r.name} ({r.keras_class}) {format_shape(r.output_shape)} {r.params:,} params"
        if self.kind == "removed":
            r = self.before
            return f"- {r.name} ({r.keras_class}) {format_shape(r.output_shape)} {r.params:,} params"
        a, b = self.before, self.after
        parts = []
        if a.keras_class != b.keras_class:
            parts.append(f"type {a.keras_class} -> {b.keras_class}")
        if a.output_shape != b.output_shape:
            parts.append(f"shape {format_shape(a.output_shape)} -> {format_shape(b.output_shape)}")
        if a.params != b.params:
            parts.append(f"params {a.params:,} -> {b.params:,} ({b.params - a.params:+,})")
        if a.macs != b.macs:
            parts.append(f"MACs {a.macs:,} -> {b.macs:,}")
        if a.connected_to != b.connected_to:
            parts.append(f"inputs {', '.join(a.connected_to) or '-'} -> {', '.join(b.connected_to) or '-'}")
        if a.trainable != b.trainable:
            parts.append("now frozen" if not b.trainable else "now trainable")
        return f"~ {b.name}: " + "; ".join(parts)


def diff(a: Summary, b: Summary) -> list[Change]:
    before = {r.name: r for r in a.rows}
    after = {r.name: r for r in b.rows}
    changes = []
    for name, row in before.items():
        if name not in after:
            changes.append(Change("removed", name, row, None))
        elif _key(row) != _key(after[name]):
            changes.append(Change("changed", name, row, after[name]))
    for name, row in after.items():
        if name not in before:
            changes.append(Change("added", name, None, row))
    order = {name: i for i, name in enumerate([*after, *before])}
    return sorted(changes, key=lambda c: order[c.name])


def _key(r: Row):
    return (r.keras_class, r.output_shape, r.params, r.macs, tuple(r.connected_to), r.trainable)


def format_diff(a: Summary, b: Summary, changes: list[Change]) -> str:
    lines = [f"{a.model_name} -> {b.model_name}: {len(changes)} layer change(s)"]
    lines += [f"  {c.describe()}" for c in changes]
    lines.append(
        f"total params {a.total_params:,} -> {b.total_params:,} ({b.total_params - a.total_params:+,}); "
        f"trainable {a.trainable_params:,} -> {b.trainable_params:,}; "
        f"MACs {a.total_macs:,} -> {b.total_macs:,}"
    )
    return "\n".join(lines)
