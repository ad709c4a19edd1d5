"""Text -> Graph IR: loading, validation, expansion."""

from __future__ import annotations

from dataclasses import dataclass, field

from nnspec.spec.graph import Graph, Node
from nnspec.spec.loader import Source, load_file, load_text


@dataclass
class Spec:
    """A checked spec: its source, graph and analysis (shapes, parameters, MACs)."""

    source: Source
    graph: Graph
    analysis: object  # nnspec.analysis.Analysis
    raw: dict = field(default_factory=dict)
    overrides: tuple[str, ...] = ()  # the `--set PATH=VALUE` overrides applied to the file, in order

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def path(self) -> str:
        return self.source.file

    @property
    def train(self) -> dict:
        return dict(self.raw.get("train") or {})

    @property
    def data(self) -> dict:
        return dict(self.raw.get("data") or {})

    @property
    def loss(self):
        return self.raw.get("loss")

    def losses(self) -> dict[str, dict]:
        """Loss per head, each as {type, weight, ...}; defaults to categorical cross-entropy."""
        loss = self.raw.get("loss") or "categorical_crossentropy"
        heads = list(self.graph.heads)
        if isinstance(loss, str) or (isinstance(loss, dict) and "type" in loss):
            per_head = {h: loss for h in heads}
        else:
            per_head = {h: loss.get(h, "categorical_crossentropy") for h in heads}
        out = {}
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


__all__ = ["Graph", "Node", "Source", "Spec", "load_file", "load_text"]
