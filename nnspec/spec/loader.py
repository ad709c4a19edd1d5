"""Safe YAML loading that remembers where every value came from.

PyYAML's ``compose`` gives a node tree with start marks; we turn it into plain data
ourselves, so that nothing is ever constructed from a tag (no Python objects), duplicate
keys are errors, and aliases cannot blow up (every visited node counts against a limit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NoReturn

import yaml

from nnspec.diagnostics import Diagnostic
from nnspec.errors import SpecError

MAX_BYTES = 2 * 1024 * 1024  # a spec is a few kilobytes; 2 MiB leaves room for generated ones
MAX_DEPTH = 64
MAX_NODES = 200_000  # counted with aliases expanded: a "billion laughs" file stops here
MAX_SCALAR = 10_000

Path = tuple  # ("encoder", 2, "conv2d", "filters")

_CORE_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:merge",
    "tag:yaml.org,2002:timestamp",
}


# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution): `1e-5` and `1E3` are numbers,
# `yes`/`on`/`no`/`off` stay text, `010` is ten and `1_000` is text. PyYAML implements YAML 1.1, so the plain
# scalars are resolved here instead. Merge keys (`<<: *defaults`) are kept: specs use them for shared settings.
_CORE_RESOLVERS = (
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", "~nN"),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    ("tag:yaml.org,2002:float",
     r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
     "-+.0123456789"),
)


def _core_loader(base: Any) -> type:
    """``base`` (a PyYAML loader class) resolving plain scalars by the YAML 1.2 core schema."""
    import re

    replaced = {tag for tag, _, _ in _CORE_RESOLVERS} | {"tag:yaml.org,2002:timestamp"}
    table = {first: [(tag, rx) for tag, rx in entries if tag not in replaced]
             for first, entries in base.yaml_implicit_resolvers.items()}
    for tag, pattern, firsts in _CORE_RESOLVERS:
        for first in [*firsts, None] if tag.endswith("null") else firsts:
            table.setdefault(first, []).append((tag, re.compile(pattern)))
    return type("Yaml12" + base.__name__, (base,), {"yaml_implicit_resolvers": table})


def core_scalar(tag: str, text: str) -> object:
    """The value of a plain scalar resolved to a YAML 1.2 core ``tag`` (int, float, bool, null)."""
    if tag.endswith(":null"):
        return None
    if tag.endswith(":bool"):
        return text.lower() == "true"
    if tag.endswith(":int"):
        if text.startswith(("0x", "0o")):
            return int(text[2:], 16 if text[1] == "x" else 8)
        return int(text, 10)
    lowered = text.lower()
    if lowered.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    if lowered == ".nan":
        return float("nan")
    return float(text)


_YAML12_LOADER = _core_loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader))


_CORE_SCALAR_TAGS = {tag for tag, _, _ in _CORE_RESOLVERS}


@dataclass
class Source:
    """A loaded spec: plain data, and positions (1-based line, column) per spec path."""

    data: object
    file: str
    text: str
    positions: dict = field(default_factory=dict)  # path -> (line, col) of the value
    key_positions: dict = field(default_factory=dict)  # path -> (line, col) of its key
    overrides: dict = field(default_factory=dict)  # path -> "PATH=VALUE" of the --set that gave its value

    def line_text(self, line: int) -> str:
        lines = self.text.splitlines()
        return lines[line - 1] if 0 < line <= len(lines) else ""

    def locate(self, path: Path, key: bool = False) -> tuple[int, int]:
        """Position of ``path``, falling back to its nearest located parent."""
        table = self.key_positions if key else self.positions
        p = tuple(path)
        while p:
            if p in table:
                return table[p]
            if not key and p in self.key_positions:
                return self.key_positions[p]
            p = p[:-1]
        return self.positions.get((), (1, 1))

    def override_of(self, path: Path) -> str | None:
        """The ``--set`` override that gave the value at ``path`` (or one of its parents), if any."""
        p = tuple(path)
        while p:
            if p in self.overrides:
                return self.overrides[p]
            p = p[:-1]
        return None

    def diagnostic(self, path: Path, message: str, code: str, hint: str = "", key: bool = False, shown_path=None) -> Diagnostic:
        override = self.override_of(path) if self.overrides else None
        if override is not None:  # the value came from the command line, not from the file
            return Diagnostic(file=f"--set {override}", path=format_path(shown_path if shown_path is not None else path),
                              code=code, message=message, hint=hint)
        line, col = self.locate(path, key=key)
        return Diagnostic(
            file=self.file,
            line=line,
            column=col,
            path=format_path(shown_path if shown_path is not None else path),
            code=code,
            message=message,
            hint=hint,
            source_line=self.line_text(line),
        )


def format_path(path: Path) -> str:
    """("encoder", 2, "filters") -> "encoder[2].filters"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _fail(file: str, message: str, code: str, line: int = 0, col: int = 0, text: str = "", hint: str = "") -> NoReturn:
    src = text.splitlines()[line - 1] if text and 0 < line <= len(text.splitlines()) else ""
    raise SpecError(Diagnostic(file=file, line=line, column=col, code=code, message=message, hint=hint, source_line=src))


def read_text(path: str) -> str:
    """Read a spec file as UTF-8 text with clear errors for missing, huge or binary files."""
    import os

    try:
        size = os.path.getsize(path)
        if size > MAX_BYTES:
            _fail(path, f"file is {size:,} bytes; specs are limited to {MAX_BYTES:,} bytes", "limit")
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        _fail(path, "no such file", "input", hint="check the path")
    except IsADirectoryError:
        _fail(path, "is a directory, not a spec file", "input")
    except PermissionError:
        _fail(path, "permission denied", "input")
    except OSError as exc:
        _fail(path, f"cannot read the file: {exc.strerror or exc}", "input")
    return decode(raw, path)


def decode(raw: bytes, file: str) -> str:
    if b"\x00" in raw[:8192]:
        _fail(file, "this is a binary file, not a YAML spec", "input")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        _fail(file, f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})", "input", line, 1,
              hint="save the spec as UTF-8")


def load_text(text: str, file: str = "<string>") -> Source:
    """Parse YAML text into a :class:`Source`, enforcing the safety limits."""
    if len(text) > MAX_BYTES:
        _fail(file, f"spec text is {len(text):,} characters; the limit is {MAX_BYTES:,}", "limit")
    try:
        _check_nesting(text, file, _YAML12_LOADER)
        loader = _YAML12_LOADER(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = exc.problem or exc.context or "invalid YAML"
        _fail(file, f"invalid YAML: {problem}", "yaml", line, col, text,
              hint="check indentation, and quote values that contain ':' or '#'")
    except yaml.YAMLError as exc:
        _fail(file, f"invalid YAML: {exc}", "yaml")
    except RecursionError:
        _fail(file, f"the document nests too deeply (limit {MAX_DEPTH} levels)", "limit")
    src = Source(data=None, file=file, text=text)
    if node is None:
        _fail(file, "the file is empty", "input", hint="a spec needs at least `inputs:` and `encoder:`")
    builder = _Builder(src)
    src.data = builder.build(node, (), 0)
    if builder.diagnostics:
        raise SpecError(builder.diagnostics)
    return src


def _check_nesting(text: str, file: str, loader_cls) -> None:
    """Refuse documents nested deeper than MAX_DEPTH *before* composing them.

    The YAML composer (libyaml's binding and PyYAML's pure-Python one alike) builds nodes
    recursively: 30,000 nested ``[`` overflow the C stack and kill the process (SIGSEGV) before
    any limit of ours could look at the tree. The event parser is a state machine, not
    recursive, so one cheap pass over its events measures the depth safely first.
    """
    depth = 0
    for event in yaml.parse(text, Loader=loader_cls):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
                _fail(file, f"the document nests deeper than {MAX_DEPTH} levels", "limit", line, col, text,
                      hint="a spec needs a handful of levels; this file is generated wrongly or hostile")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def load_file(path: str) -> Source:
    return load_text(read_text(path), file=path)


class _Builder:
    def __init__(self, src: Source):
        self.src = src
        self.count = 0
        self.diagnostics: list[Diagnostic] = []
        self.constructor = yaml.constructor.SafeConstructor()

    def _error(self, node, message, code, hint=""):
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        raise SpecError(
            Diagnostic(file=self.src.file, line=line, column=col, code=code, message=message, hint=hint,
                       source_line=self.src.line_text(line))
        )

    def build(self, node, path: Path, depth: int):
        self.count += 1
        if self.count > MAX_NODES:
            self._error(node, f"the document expands to more than {MAX_NODES:,} values (aliases included)",
                        "limit", hint="a spec this large is likely an alias bomb; write it without nested aliases")
        if depth > MAX_DEPTH:
            self._error(node, f"the document nests deeper than {MAX_DEPTH} levels", "limit")
        self.src.positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if node.tag not in _CORE_TAGS:
            self._error(node, f"tag {node.tag} is not allowed: specs are plain YAML data", "yaml",
                        hint="remove the tag; nnspec never constructs objects from YAML")
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, i), depth + 1) for i, child in enumerate(node.value)]
        if len(node.value) > MAX_SCALAR:
            self._error(node, f"a value longer than {MAX_SCALAR:,} characters", "limit")
        if node.tag in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:str"):
            return node.value
        try:
            if node.tag in _CORE_SCALAR_TAGS:
                return core_scalar(node.tag, node.value)
            return self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            self._error(node, f"cannot read value {node.value!r}: {exc}", "yaml")

    def _mapping(self, node, path, depth):
        out: dict = {}
        seen: dict = {}
        merged: dict = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                value = self.build(value_node, path, depth + 1)
                for m in value if isinstance(value, list) else [value]:
                    if isinstance(m, dict):
                        merged.update({k: v for k, v in m.items() if k not in merged})
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._error(key_node, "mapping keys must be plain names", "type")
            key = self.build(key_node, (*path, "<key>"), depth + 1)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                self._error(key_node, "mapping keys must be plain names", "type")
            key = str(key) if not isinstance(key, str) else key
            line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            if key in seen:
                first = seen[key]
                self.diagnostics.append(
                    Diagnostic(
                        file=self.src.file, line=line, column=col, path=format_path((*path, key)),
                        code="duplicate-key", message=f"duplicate key `{key}` (first given on line {first})",
                        hint="remove one of them; YAML would silently keep only the last",
                        source_line=self.src.line_text(line),
                    )
                )
                continue
            seen[key] = line
            self.src.key_positions[(*path, key)] = (line, col)
            out[key] = self.build(value_node, (*path, key), depth + 1)
        self.src.positions.pop((*path, "<key>"), None)
        for k, v in merged.items():
            out.setdefault(k, v)
        return out
