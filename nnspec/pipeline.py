"""A spec file -> a checked :class:`Spec`: load, validate, expand, analyse.

This module sits above :mod:`nnspec.analysis` and below everything that uses a checked spec
(report, data, backends, training, the public API), so nothing needs the public facade.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nnspec.analysis import Analysis, analyze
from nnspec.diagnostics import Diagnostic
from nnspec.errors import SpecError
from nnspec.spec.expand import build_graph
from nnspec.spec.graph import Graph
from nnspec.spec.loader import Source, load_file, load_text
from nnspec.spec.overrides import apply_overrides


@dataclass
class Spec:
    """A checked spec: its source, graph and analysis (shapes, parameters, MACs)."""

    source: Source
    graph: Graph
    analysis: Analysis
    raw: dict[str, Any] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()  # the `--set PATH=VALUE` overrides applied to the file, in order

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def path(self) -> str:
        return self.source.file

    @property
    def train(self) -> dict[str, Any]:
        return dict(self.raw.get("train") or {})

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.raw.get("data") or {})

    @property
    def loss(self) -> Any:
        return self.raw.get("loss")

    def losses(self) -> dict[str, dict]:
        """Loss per head, each as {type, weight, ...}; defaults to categorical cross-entropy."""
        loss = self.raw.get("loss") or "categorical_crossentropy"
        heads = list(self.graph.heads)
        if isinstance(loss, str) or (isinstance(loss, dict) and "type" in loss):
            per_head = {h: loss for h in heads}
        else:
            per_head = {h: loss.get(h, "categorical_crossentropy") for h in heads}
        out: dict[str, dict] = {}
        for head, item in per_head.items():
            item = {"type": item} if isinstance(item, str) else dict(item)
            item.setdefault("weight", 1.0)
            out[head] = item
        return out

    @property
    def total_params(self) -> int:
        return self.analysis.total_params

    @property
    def trainable_params(self) -> int:
        return self.analysis.trainable_params

    @property
    def non_trainable_params(self) -> int:
        return self.analysis.non_trainable_params



def build_graph_checked(src: Source) -> Graph:
    """The graph of a spec; with schema or reference errors, also the shape errors of the valid part.

    Every problem shows in one run: the broken layers are left out, the rest is shape-checked.
    """
    if not isinstance(src.data, dict):
        return build_graph(src)  # raises its one error
    from dataclasses import replace

    from nnspec.spec.expand import _sane, expand_partial, once_per_block_definition
    from nnspec.spec.validate import validate_skeleton

    diags = validate_skeleton(src)
    graph, diags = expand_partial(replace(src, data=_sane(src.data)) if diags else src, diags)
    if not diags:
        return graph
    try:
        analyze(graph, src, partial=True)
    except SpecError as exc:
        diags = once_per_block_definition([*diags, *exc.diagnostics])  # the expander may have seen some already
    raise SpecError(diags)


def load(spec: str | os.PathLike[str] | Spec | None, *, text: str | None = None,
         overrides: Iterable[str] = ()) -> Spec:
    """Load, validate, expand and shape-check a spec (a path, YAML text via ``text=``, or a Spec).

    ``overrides`` are ``PATH=VALUE`` strings (``"train.lr=0.01"``, ``"encoder[2].filters=64"``) applied to the
    file's data before validation; problems with them are reported against the override, not the file.
    Raises :class:`nnspec.SpecError` whose ``.diagnostics`` lists every problem found.
    """
    overrides = tuple(str(o) for o in overrides)
    if isinstance(spec, Spec):
        if not overrides:
            return spec
        return load(spec.path, text=spec.source.text, overrides=(*spec.overrides, *overrides))
    if text is not None:
        src = load_text(text, file=os.fspath(spec) if spec else "<string>")
    else:
        if spec is None:
            raise SpecError("no spec given: pass a path, a Spec, or YAML text with text=")
        src = load_file(os.fspath(spec))
    apply_overrides(src, overrides)
    graph = build_graph_checked(src)
    analysis = analyze(graph, src)
    return Spec(source=src, graph=graph, analysis=analysis, raw=src.data if isinstance(src.data, dict) else {},
                overrides=overrides)


def check(spec: str | os.PathLike[str] | Spec | None, *, text: str | None = None,
          overrides: Iterable[str] = ()) -> list[Diagnostic]:
    """Every problem in a spec, sorted by position; an empty list means it is valid."""
    try:
        load(spec, text=text, overrides=overrides)
    except SpecError as exc:
        return exc.diagnostics
    return []
