"""The Graph IR: what every later stage (analysis, reports, backends) reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nnspec.diagnostics import Diagnostic

if TYPE_CHECKING:
    from nnspec.errors import ShapeProblem
    from nnspec.spec.loader import Source


@dataclass
class Node:
    """One layer (or graph input) after expansion, with every default filled in."""

    name: str  # unique, Keras-style (conv2d, conv2d_1, ...)
    type: str  # catalog name
    attrs: dict  # validated attributes, defaults filled; no name/inputs
    inputs: list[str]  # producer node names, in order
    section: str  # "inputs", "encoder", "decoder", "head", or "heads.<name>"
    path: tuple = ()  # where the user wrote it (data path of the layer item)
    attrs_path: tuple = ()  # data path of its attribute mapping (for locating attribute errors)
    block: str | None = None  # block instance label, e.g. "residual#2"
    block_name: str | None = None  # the block definition used
    repeat: int | None = None  # 0-based repetition inside the block use
    block_index: int | None = None  # running index over every use of the block in the network
    trainable: bool = True
    after_error: int = 0  # in a spec with errors: the line of a broken layer this one reads past (0: none)

    @property
    def is_input(self) -> bool:
        return self.type == "input"


@dataclass
class Graph:
    """Nodes in a valid evaluation order (every input precedes its users)."""

    name: str
    nodes: dict[str, Node] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    heads: dict[str, str] = field(default_factory=dict)  # head name -> output node

    def add(self, node: Node) -> None:
        self.nodes[node.name] = node

    def consumers(self) -> dict[str, list[str]]:
        users: dict[str, list[str]] = {n: [] for n in self.nodes}
        for node in self.nodes.values():
            for i in node.inputs:
                users[i].append(node.name)
        return users

    def is_sequential(self) -> bool:
        """True when the graph is one chain from one input to one output (Keras prints no Connected to)."""
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            return False
        users = self.consumers()
        return all(len(n.inputs) <= 1 for n in self.nodes.values()) and all(len(u) <= 1 for u in users.values())

    def sections(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for node in self.nodes.values():
            out.setdefault(node.section, []).append(node.name)
        return out


def node_diagnostic(src: Source | None, node: Node, exc: ShapeProblem, prefix: bool = True) -> Diagnostic:
    """A shape problem of ``node``, located at the attribute it names or at the layer itself.

    Used by the analysis and by the expander (which infers shapes when a block reads one).
    """
    note = f" (in block `{node.block_name}`, {node.block})" if node.block else ""
    message = f"{node.name}: {exc.message}{note}" if prefix else f"{exc.message}{note}"
    if src is None:
        return Diagnostic(message=message, code=exc.code, hint=exc.hint, path=".".join(map(str, node.path)))
    if exc.attr and isinstance(src.data, dict):
        return src.diagnostic((*node.attrs_path, exc.attr), message, exc.code, exc.hint,
                              shown_path=(*node.path, exc.attr))
    return src.diagnostic(node.attrs_path or node.path, message, exc.code, exc.hint, key=node.attrs_path != node.path,
                          shown_path=node.path)
