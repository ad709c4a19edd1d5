"""Command-line overrides: ``--set train.lr=0.01 --set 'encoder[2].filters=64'``.

An override is a spec path (dotted keys and ``[index]`` items, as nnspec prints paths) and a YAML
value. Overrides are applied to the loaded YAML data *before* validation, so the one validator
checks them; every value they set remembers which override set it, and diagnostics about those
values name the override (``--set encoder[2].filters=abc: error: ...``) instead of a file line.

Layer items may be addressed the way paths are printed: ``encoder[2].filters`` reaches into
``- conv2d: {filters: 32}`` (``encoder[2].conv2d.filters`` works too), and ``encoder[4].rate``
on ``- dropout: 0.3`` rewrites it as ``- dropout: {rate: ...}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from nnspec.diagnostics import Diagnostic
from nnspec.errors import SpecError
from nnspec.spec.loader import Source, format_path

_SEGMENT = re.compile(r"([^.\[\]=\s]+)?((?:\[-?\d+\])*)")
_INDEX = re.compile(r"\[(-?\d+)\]")
# YAML 1.2 numbers that PyYAML (YAML 1.1) reads as text, e.g. 1e-3: on the command line they mean numbers.
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)[eE][-+]?[0-9]+")


@dataclass(frozen=True)
class Override:
    """One ``PATH=VALUE`` override: the text as given, its parsed path and its YAML value."""

    text: str
    path: tuple
    value: object

    @property
    def origin(self) -> str:
        """How diagnostics name this override: ``--set PATH=VALUE``."""
        return f"--set {self.text}"


def _error(text: str, message: str, hint: str = "", code: str = "value", path: str = "") -> SpecError:
    return SpecError(Diagnostic(file=f"--set {text}", path=path, code=code, message=message, hint=hint))


def parse_path(text: str, path_text: str) -> tuple:
    """``"encoder[2].filters"`` -> ``("encoder", 2, "filters")``; raises SpecError naming the override."""
    parts: list = []
    if not path_text:
        raise _error(text, "the path before `=` is empty", "write PATH=VALUE, e.g. train.lr=0.01")
    for segment in path_text.split("."):
        match = _SEGMENT.fullmatch(segment)
        if not match or not (match.group(1) or match.group(2)) or (not match.group(1) and not parts):
            raise _error(text, f"`{path_text}` is not a spec path",
                         "write keys separated by dots and list items as [index], e.g. encoder[2].filters")
        if match.group(1):
            parts.append(match.group(1))
        parts.extend(int(i) for i in _INDEX.findall(match.group(2)))
    return tuple(parts)


def parse_override(text: str) -> Override:
    """Parse ``PATH=VALUE``; the value is read as YAML (``64`` is an int, ``1e-3`` a float, ``[3, 3]`` a list,
    nothing at all is null)."""
    from nnspec.spec.loader import load_text

    path_text, sep, value_text = text.partition("=")
    if not sep:
        raise _error(text, "an override is PATH=VALUE (no `=` found)", "e.g. --set train.lr=0.01")
    path = parse_path(text, path_text.strip())
    value = None
    if value_text.strip():
        try:
            value = load_text(value_text, file=f"--set {text}").data
            if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
                value = float(value)
        except SpecError as exc:
            first = exc.diagnostics[0]
            raise _error(text, f"the value is not valid YAML: {first.message}",
                         "quote the value for the shell, e.g. --set 'train.lr=1e-3'", code="yaml",
                         path=format_path(path)) from None
    return Override(text=text, path=path, value=value)


def _kind(value) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"the value {value!r}"


def _layer_wrapper(item, key) -> str | None:
    """The layer type of a layer item ``{type: attrs}`` or ``type`` when ``key`` is not that type."""
    from nnspec.layers import registry

    if isinstance(item, str):
        name = item
    elif isinstance(item, dict) and len(item) == 1:
        (name,) = item
    else:
        return None
    if name == key or not isinstance(name, str):
        return None
    if name == "block" or registry.canonical(name) not in (None, "input"):
        return name
    return None


def apply_override(src: Source, override: Override) -> tuple:
    """Set one override's value in ``src.data`` and record where it came from; returns its data path."""
    node: object = src.data
    if not isinstance(node, dict):
        raise _error(override.text, "the spec is not a mapping, so nothing in it can be set")
    data_path: tuple = ()
    container: Any = None  # where `node` itself lives, to replace a layer written as a bare name
    slot: Any = None
    for i, part in enumerate(override.path):
        last = i == len(override.path) - 1
        shown = format_path(override.path[:i]) or "the spec"
        if isinstance(part, int):
            if not isinstance(node, list):
                raise _error(override.text, f"`{shown}` is {_kind(node)}, not a list: [{part}] cannot index it",
                             path=format_path(override.path))
            index = part + len(node) if part < 0 else part
            if not 0 <= index < len(node):
                raise _error(override.text, f"`{shown}` has {len(node)} item(s); index {part} is out of range",
                             "indices start at 0; negative ones count from the end", path=format_path(override.path))
            data_path += (index,)
            if last:
                node[index] = override.value
                break
            container, slot, node = node, index, node[index]
            continue
        layer = _layer_wrapper(node, part) if data_path and isinstance(data_path[-1], int) else None
        if layer is not None:
            item = _open_layer(container, slot, node, layer)
            data_path += (layer,)
            container, slot, node = item, layer, item[layer]
        if not isinstance(node, dict):
            raise _error(override.text, f"`{shown}` is {_kind(node)}, not a mapping: `{part}` cannot be set in it",
                         path=format_path(override.path))
        data_path += (part,)
        if last:
            node[part] = override.value
            break
        if node.get(part) is None:
            node[part] = {}
        container, slot, node = node, part, node[part]
    src.overrides[data_path] = override.text
    return data_path


def _open_layer(container, slot, item, layer: str) -> dict:
    """Make a layer item a ``{type: {attributes}}`` mapping in place, so attributes can be set in it."""
    from nnspec.layers import registry

    if isinstance(item, str):
        item = {layer: {}}
        container[slot] = item
    attrs = item[layer]
    if attrs is None:
        item[layer] = {}
    elif not isinstance(attrs, dict) and layer != "block":
        primary = registry.get(registry.canonical(layer) or layer).primary
        if primary is not None:
            item[layer] = {primary: attrs}
    return item


def apply_overrides(src: Source, overrides: Iterable[str | Override]) -> list[Override]:
    """Apply overrides in order (later ones win) to a loaded source; returns them parsed."""
    parsed = [o if isinstance(o, Override) else parse_override(str(o)) for o in overrides]
    for override in parsed:
        apply_override(src, override)
    return parsed
