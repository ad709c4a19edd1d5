"""Text -> Graph IR: loading, validation, expansion."""

from __future__ import annotations

from nnspec.spec.graph import Graph, Node
from nnspec.spec.loader import Source, load_file, load_text

__all__ = ["Graph", "Node", "Source", "load_file", "load_text"]
