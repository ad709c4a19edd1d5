"""Expansion: layer items -> Graph IR.

Resolves layer types (with "did you mean"), validates each layer's attributes against its
own fragment, evaluates computed attributes and conditions (`when:`), expands reusable blocks
(with `repeat`) and groups, fills defaults, names layers as Keras would (conv2d, conv2d_1, ...,
or a block use's `prefix:` template such as `block1a_`) and wires inputs. All problems are
collected and raised together.

Scopes: a top-level expression sees ``vars``; a block's layers see ``vars``, the block's
parameters, its counters (``repeat_index``, ``block_index``, ``block_count``) and the layers it reads
(``input``, or the names its definition declares: ``inputs: [ip, p]``). The fields of
a block use (`with:`, `prefix:`) are evaluated in the caller's scope, where the counters are
those of the repetition being expanded. Shapes are inferred on demand (``input.shape``,
``channels(prev)``) with the catalog's own rules (:mod:`nnspec.layers.rules`), so expansion and
shape inference interleave. A block gives its last layer, or what its ``outputs:`` lists; a
repeated use feeds each repetition's outputs to the next one's inputs.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from nnspec.diagnostics import Diagnostic, did_you_mean
from nnspec.errors import ShapeProblem, SpecError
from nnspec.layers import registry, rules
from nnspec.spec.expr import (
    ExpressionError,
    Tensor,
    evaluate,
    has_template,
    interpolate,
    is_expression,
    is_template,
    names_read,
    truth,
)
from nnspec.spec.graph import Graph, Node, node_diagnostic
from nnspec.spec.loader import Source, format_path
from nnspec.spec.schema import MODEL_NAME, MODEL_NAME_TEMPLATE
from nnspec.spec.validate import is_huge, validate_block_use, validate_layer, validate_skeleton

MAX_LAYERS = 10_000  # ResNet-152 has ~500; 10,000 still checks in well under a second
MAX_NESTING = 32  # blocks inside blocks; deeper is a generated or hostile spec (and would exhaust the stack)
# Names an expression gets from the expander; vars and block parameters cannot take them.
RESERVED = ("input", "prev", "repeat_index", "block_index", "block_count")
BLOCK_USE_KEYS = ("use", "repeat", "with", "name", "prefix", "inputs", "when")
GROUP_KEYS = ("when", "name", "layers")
_MODEL_NAME = re.compile(MODEL_NAME)
_MODEL_NAME_TEMPLATE = re.compile(MODEL_NAME_TEMPLATE)


class _Unknowable(ExpressionError):
    """A shape that cannot be known because of an error already reported; not reported again."""


@dataclass(frozen=True)
class _BlockCtx:
    """The block repetition whose layers are being expanded."""

    name: str  # the block definition
    use_path: tuple  # where it is used (the `- block:` item)
    label: str  # instance label, e.g. "residual2"
    repeat: int  # 0-based repetition inside the use
    index: int  # running index over every use of this block in the network
    prefix: str  # what named layers inside get in front of their name

    @property
    def note(self) -> str:
        return f" (in block `{self.name}` used at {format_path(self.use_path)})"
MAX_ITEMS = 4 * MAX_LAYERS  # layer items visited while expanding, failed ones included


class _Expander:
    def __init__(self, src: Source, block_counts: dict[str, int] | None = None):
        self.src = src
        self.block_counts = block_counts  # block -> repetitions in the whole network (`block_count`)
        self.data: dict = src.data if isinstance(src.data, dict) else {}
        self.diags: list[Diagnostic] = []
        self.counters: dict[str, int] = {}
        self.block_uses: dict[str, int] = {}  # label base -> uses so far (residual1, residual2, ...)
        self.block_index: dict[str, int] = {}  # block -> repetitions so far, over the whole network
        self.block_stack: list[str] = []  # blocks being expanded, to refuse a block that uses itself
        self.explicit = self._explicit_names()
        self.used_names: set[str] = set()
        self.failed_line = 0  # line of the last layer that failed, until the next layer is placed
        self.aliases: dict[str, str] = {}  # top-level names that stand for another node (block uses, skipped layers)
        self.shapes: dict[str, tuple] = {}  # inferred on demand, when an expression reads a shape
        self.shape_failed: set[str] = set()
        self.env = self._vars()
        self.graph = Graph(name=self._model_name())
        self.items_seen = 0  # bounds the work even when every expanded layer fails
        self.dry = False  # the block_count pre-pass: counts every repetition, errors or not
        self.no_input_reported = False  # "several inputs: say which" is reported once, not for every layer after

    # -- helpers ----------------------------------------------------------------------------
    def error(self, path, message, code, hint="", key=False, shown=None):
        self.diags.append(self.src.diagnostic(path, message, code, hint, key=key, shown_path=shown))

    def expression_error(self, exc: ExpressionError, path, message, shown=None):
        """Report a failed expression (unless it only repeats an error reported already)."""
        if not isinstance(exc, _Unknowable):
            self.error(path, message, "expression", shown=shown)

    def _vars(self) -> dict:
        """``vars`` evaluated in order: a var may use the ones above it (`wide: "${2 * base}"`)."""
        env: dict = {}
        for key, value in (self.data.get("vars") or {}).items():
            if key in RESERVED:
                self.error(("vars", key), f"`{key}` is a reserved name in expressions; choose another", "value",
                           key=True, hint=f"reserved: {', '.join(RESERVED)}")
                continue
            try:
                env[key] = _substitute(value, env)
            except ExpressionError as exc:
                self.error(("vars", key), f"vars.{key}: {exc}", "expression")
        return env

    def _model_name(self) -> str:
        """The spec's `name`, its `${...}` parts filled in from `vars` (`name: "resnet${depth}"`)."""
        name = self.data.get("name")
        if not isinstance(name, str) or not name:
            return "model"
        if not has_template(name) or not _MODEL_NAME_TEMPLATE.match(name):
            return name  # a name the schema refused was reported already
        try:
            filled = interpolate(name, self.env)
        except ExpressionError as exc:
            self.error(("name",), f"name: {exc}", "expression")
            return "model"
        if not _MODEL_NAME.match(filled):
            self.error(("name",), f"name: {name!r} gives {filled!r}, which is not a valid model name: use letters, "
                       "digits, _, . and -, starting with a letter", "value")
            return "model"
        return filled

    def _explicit_names(self) -> dict[str, tuple]:
        """Names users gave to layers and block uses in the sections (for 'defined later' errors)."""
        names: dict[str, tuple] = {}

        def visit(items, base):
            for i, item in enumerate(items):
                if isinstance(item, dict) and len(item) == 1:
                    (key, attrs), = item.items()
                    if not isinstance(attrs, dict):
                        continue
                    given = attrs.get("name")
                    for name in given if isinstance(given, list) else [given]:  # a block use may name several outputs
                        if isinstance(name, str) and not has_template(name):
                            names.setdefault(name, (*base, i))
                    if key == "group" and isinstance(attrs.get("layers"), list):
                        visit(attrs["layers"], (*base, i, "group", "layers"))

        for section, items in self._section_lists():
            visit(items, section)
        return names

    def _section_lists(self):
        d = self.data
        for key in ("encoder", "backbone", "decoder", "head"):
            if isinstance(d.get(key), list):
                yield (key,), d[key]
        if isinstance(d.get("heads"), dict):
            for head, items in d["heads"].items():
                if isinstance(items, list):
                    yield ("heads", head), items

    def auto_name(self, base: str) -> str:
        while True:
            n = self.counters.get(base, 0)
            self.counters[base] = n + 1
            name = base if n == 0 else f"{base}_{n}"
            if name not in self.used_names and name not in self.explicit and name not in self.aliases:
                return name

    def tensor_env(self, env: dict, prev: str | None) -> dict:
        """``env`` plus `prev` (the previous layer's output) for expressions that read shapes."""
        return {**env, "prev": Tensor(prev, self.shape_of)} if prev is not None else env

    def shape_of(self, name: str) -> tuple:
        """The output shape of node ``name`` by the catalog's rules, inferring its producers first."""
        stack = [name]
        while stack:
            current = stack[-1]
            if current in self.shapes:
                stack.pop()
                continue
            node = self.graph.nodes.get(current)
            if node is None or current in self.shape_failed:
                raise _Unknowable(f"the shape of `{name}` is unknown (see the error above)")
            missing = [i for i in node.inputs if i not in self.shapes]
            if missing:
                stack.extend(missing)
                continue
            try:
                self.shapes[current] = rules.output_shape(node.type, [self.shapes[i] for i in node.inputs],
                                                          node.attrs)
            except ShapeProblem as exc:
                self.shape_failed.add(current)
                self.diags.append(node_diagnostic(self.src, node, exc))
                raise _Unknowable(f"the shape of `{name}` is unknown (see the error above)") from None
            stack.pop()
        return self.shapes[name]

    # -- main -------------------------------------------------------------------------------
    def run(self) -> Graph:
        d = self.data
        self._requirements()
        for name, attrs in (d.get("inputs") or {}).items():
            self._add_input(name, attrs)
        if "encoder" in d and "backbone" in d:
            self.error(("backbone",), "give either `encoder` or `backbone`, not both (they are the same section)",
                       "unknown-key", key=True)
        if "head" in d and "heads" in d:
            self.error(("heads",), "give either `head` (one output) or `heads` (several), not both", "unknown-key",
                       key=True)
        prev = self.graph.inputs[0] if len(self.graph.inputs) == 1 else None
        trunk_sections = [s for s in ("encoder", "backbone", "decoder") if isinstance(d.get(s), list)]
        if not trunk_sections and not d.get("head") and not d.get("heads"):
            self.error((), "the spec has no layers: add an `encoder:` (and optionally `decoder:` and `head:`)",
                       "missing")
        for section in trunk_sections:
            prev = self._layers(d[section], (section,), section if section != "backbone" else "encoder", prev, {})
        if isinstance(d.get("head"), list):
            out = self._layers(d["head"], ("head",), "head", prev, {})
            if out:
                self.graph.outputs.append(out)
                self.graph.heads["output"] = out
        elif isinstance(d.get("heads"), dict):
            for head, items in d["heads"].items():
                if not isinstance(items, list) or not items:
                    continue
                out = self._layers(items, ("heads", head), f"heads.{head}", prev, {}, head_name=head)
                if out:
                    self.graph.outputs.append(out)
                    self.graph.heads[head] = out
        elif prev and prev not in self.graph.inputs:
            self.graph.outputs.append(prev)
            self.graph.heads["output"] = prev
        self._check_loss()
        return self.graph

    def _requirements(self) -> None:
        """`require:` -- each check on the vars must hold; a failing one is its message with the values of
        the vars it reads (so `--set vars.depth=34` is told why)."""
        if self.dry:
            return
        for i, item in enumerate(self.data.get("require") or []):
            path = ("require", i, "check")
            try:
                holds = truth(_substitute(item["check"], self.env), "the check")
            except ExpressionError as exc:
                self.expression_error(exc, path, f"require: {exc}")
                continue
            if not holds:
                read = names_read(item["check"])
                used = [f"{k}={v!r}" for k, v in self.env.items() if k in read]
                got = f" (got {', '.join(used)})" if used else ""
                self.error(path, f"{item['message']}{got}", "value",
                           hint="change the var (`--set vars.NAME=VALUE` or the spec's `vars:`)")

    def _add_input(self, name, attrs):
        path = ("inputs", name)
        if not isinstance(attrs, dict):
            return  # the skeleton already reported it
        if name in self.explicit:
            self.error(self.explicit[name], f"layer name `{name}` is already used by a graph input", "reference")
        self.used_names.add(name)
        node = Node(name=name, type="input", attrs={"shape": self._input_shape(name, attrs.get("shape", [])),
                                                     "dtype": attrs.get("dtype", "float32")},
                    inputs=[], section="inputs", path=path, attrs_path=path)
        self.graph.add(node)
        self.graph.inputs.append(name)

    def _input_shape(self, name: str, shape: list) -> list:
        """An input's shape with its computed dimensions (`[$resolution, $resolution, 3]`) evaluated from
        `vars`; a dimension that does not give a whole number >= 1 is reported and left unknown (None)."""
        out = []
        for i, dim in enumerate(shape):
            if not is_expression(dim):
                out.append(dim)
                continue
            try:
                value = evaluate(dim, self.env)
            except ExpressionError as exc:
                self.error(("inputs", name, "shape", i), f"inputs.{name}.shape[{i}]: {exc}", "expression")
                value = None
            else:
                if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1
                                          or is_huge(value)):
                    hint = "round it: `${int(...)}`" if isinstance(value, float) else ""
                    self.error(("inputs", name, "shape", i), f"inputs.{name}.shape[{i}]: `{dim}` gives {value!r}; "
                               "a dimension must be a whole number >= 1 (or null for any size)", "value", hint)
                    value = None
            out.append(value)
        return out

    # -- layers -----------------------------------------------------------------------------
    def _layers(self, items, base, section, prev, scope, head_name=None, block=None, env=None):
        """Add a list of layer items; returns the name of the last node (or prev)."""
        env = self.env if env is None else env
        for i, item in enumerate(items):
            path = (*base, i)
            is_last = i == len(items) - 1
            self.items_seen += 1
            if self.items_seen > MAX_ITEMS:
                self.error(path, f"the spec expands to more than {MAX_ITEMS:,} layer items", "size",
                           hint="lower `repeat`, or nest fewer repeated blocks")
                raise SpecError(self.diags)
            if isinstance(item, dict) and len(item) == 1 and "block" in item:
                prev = self._block_use(item["block"], (*path, "block"), section, prev, scope, env, block)
                continue
            if isinstance(item, dict) and len(item) == 1 and "group" in item:
                prev = self._group(item["group"], (*path, "group"), section, prev, scope, env, block)
                continue
            parsed = self._parse_item(item, path)
            if parsed is None:
                continue
            type_name, attrs, attrs_path = parsed
            default_name = head_name if (head_name and is_last) else None
            errors_before = len(self.diags)
            made = self._layer(type_name, attrs, path, attrs_path, section, prev, scope, env, block, default_name)
            if made is None and len(self.diags) > errors_before:
                self.failed_line = self.diags[-1].line  # the next layer reads `prev`, skipping this broken one
            elif made is not None:
                if self.failed_line and made in self.graph.nodes and prev in self.graph.nodes[made].inputs:
                    self.graph.nodes[made].after_error = self.failed_line
                self.failed_line = 0
            prev = made or prev
            if len(self.graph.nodes) > MAX_LAYERS:
                self.error(path, f"the spec expands to more than {MAX_LAYERS:,} layers", "size")
                raise SpecError(self.diags)
        return prev

    def _parse_item(self, item, path):
        if isinstance(item, str):
            type_name, raw, attrs_path = item, {}, path
        elif isinstance(item, dict) and len(item) == 1:
            (type_name, raw), = item.items()
            attrs_path = (*path, type_name)
        else:
            self.error(path, "a layer is written `- type: {attributes}` (one key), e.g. `- conv2d: {filters: 8, "
                       "kernel_size: 3}`, or just `- flatten`", "type")
            return None
        canonical = registry.canonical(type_name)
        if canonical is None or canonical == "input":
            choices = [n for n in registry.all_names_and_aliases() if n != "input"] + ["block", "group"]
            hint = did_you_mean(type_name, choices) or "`nnspec layers` lists the catalog"
            self.error(path if isinstance(item, str) else (*path, type_name), f"unknown layer type `{type_name}`",
                       "unknown-layer", hint, key=not isinstance(item, str), shown=path)
            return None
        cls = registry.get(canonical)
        if raw is None:
            raw = {}
        elif not isinstance(raw, dict):
            main = cls.main_attribute()
            if main is None:
                self.error(attrs_path, f"{canonical} takes a mapping of attributes (got {raw!r})", "type",
                           hint=f"write `- {type_name}: {{...}}` or `- {type_name}`")
                return None
            raw = {main: raw}
        return canonical, raw, attrs_path

    def _condition(self, value, env, prev, path, shown, note) -> bool | None:
        """A `when:` value as true/false; None (reported) when it cannot be evaluated."""
        try:
            result = _substitute(value, self.tensor_env(env, prev))
            return truth(result, "the condition")
        except ExpressionError as exc:
            self.expression_error(exc, path, f"when: {exc}{note}", shown=shown)
            return None

    def _local_name(self, value, env, prev, path, shown, note) -> str | None:
        """A `name:` as written, or with its `${...}` parts filled in; None (reported) when that fails."""
        if not isinstance(value, str) or not has_template(value):
            return value
        try:
            return interpolate(value, self.tensor_env(env, prev))
        except ExpressionError as exc:
            self.expression_error(exc, path, f"name: {exc}{note}", shown=shown)
            return None

    def _bind(self, local: str, target: str, scope: dict, block: _BlockCtx | None) -> None:
        """Let ``local`` stand for node ``target`` (a block use's output, a skipped layer's input)."""
        scope[local] = target
        if block is None:
            self.aliases[local] = target

    def _layer(self, type_name, raw, path, attrs_path, section, prev, scope, env, block, default_name):
        cls = registry.get(type_name)
        note = block.note if block else ""
        if "when" in raw:
            keep = self._condition(raw["when"], env, prev, (*attrs_path, "when"), (*path, "when"), note)
            if not keep:
                inputs = self._resolve_inputs(raw.get("inputs"), cls, path, attrs_path, prev, scope, note, env)
                local = raw.get("name")
                if keep is False and isinstance(local, str) and inputs:
                    self._bind(local, inputs[0], scope, block)  # a skipped layer passes its input through
                return None
        attrs = {}
        ok = True
        failed = []
        item_env = self.tensor_env(env, prev)
        local = None  # the name as the user wrote it (templates filled in), without the block's prefix
        for key, value in raw.items():
            if key == "when":
                continue
            if key == "inputs":
                attrs[key] = value
            elif key == "name":
                local = self._local_name(value, env, prev, (*attrs_path, key), (*path, key), note)
                if local is None:
                    ok = False  # reported; the name is left out so it is not also "not a text"
                else:
                    attrs[key] = block.prefix + local if isinstance(local, str) and block else local
            else:
                try:
                    attrs[key] = _substitute(value, item_env)
                except ExpressionError as exc:
                    self.expression_error(exc, (*attrs_path, key), f"{key}: {exc}{note}", shown=(*path, key))
                    failed.append(f"`{key}`")
                    ok = False
        errors = validate_layer(type_name, attrs, self.src, attrs_path, path, note=note)
        # An attribute whose expression failed is not also "missing".
        errors = [e for e in errors if not (e.code == "missing" and any(f in e.message for f in failed))]
        if errors:
            self.diags.extend(errors)
            ok = False
        # Inputs are resolved even when attributes are wrong, so reference errors show too.
        inputs = self._resolve_inputs(attrs.get("inputs"), cls, path, attrs_path, prev, scope, note, env)
        if not ok or inputs is None or ("name" in attrs and not isinstance(attrs["name"], str)):
            if isinstance(local, str):
                scope[local] = local  # keep later references quiet
            return None
        values = {**cls.defaults(), **{k: v for k, v in attrs.items() if k not in ("name", "inputs")}}
        if attrs.get("name") is not None:
            name = attrs["name"]
        elif default_name:
            name = default_name
        else:
            name = self.auto_name(cls.auto_name())
        if name in self.used_names or name in self.aliases:
            self.error((*attrs_path, "name"), f"layer name `{name}` is used twice{note}", "reference",
                       hint="layer names must be unique in a spec; inside blocks, give the block use a `prefix:`",
                       shown=(*path, "name"))
            return None
        self.used_names.add(name)
        if isinstance(local, str):
            scope[local] = name
        node = Node(
            name=name, type=type_name, attrs={k: v for k, v in values.items() if k != "trainable"},
            inputs=inputs, section=section, path=path, attrs_path=attrs_path,
            block=block.label if block else None, block_name=block.name if block else None,
            repeat=block.repeat if block else None, block_index=block.index if block else None,
            trainable=values.get("trainable", True),
        )
        self.graph.add(node)
        return name

    def _resolve_inputs(self, given, cls, path, attrs_path, prev, scope, note, env):
        if given is None:
            if cls.min_inputs > 1:
                self.error(attrs_path, f"{cls.name} merges {cls.min_inputs} or more tensors: name them with "
                           f"`inputs: [a, b]`{note}", "missing", hint="give the layers to merge a `name:` and list them",
                           shown=path)
                return None
            if prev is None:
                if not self.graph.inputs or self.no_input_reported:
                    return None  # reported once: `inputs:` is missing, or the first layer without `inputs:`
                self.no_input_reported = True
                names = ", ".join(self.graph.inputs)
                self.error(attrs_path, f"this spec has several inputs ({names}); say which one this layer reads "
                           f"with `inputs:`{note}", "missing", shown=path,
                           hint=f"e.g. `inputs: {self.graph.inputs[0]}`; the layers after it follow it")
                return None
            return [prev]
        if not isinstance(given, (str, list)) or not all(isinstance(r, str) for r in ([given] if isinstance(given, str) else given)):
            return None  # the layer's schema reports it
        names = [given] if isinstance(given, str) else list(given)
        resolved = []
        for i, ref in enumerate(names):
            ref = self._reference(ref, env, prev, (*attrs_path, "inputs", *((i,) if isinstance(given, list) else ())),
                                  note)
            if ref is None:
                return None  # reported
            target = self._lookup(ref, prev, scope)
            if target is None:
                self._reference_error(ref, attrs_path, path, scope, note)
                return None
            resolved.append(target)
        n = len(resolved)
        if not cls.min_inputs <= n <= cls.max_inputs:
            want = str(cls.min_inputs) if cls.min_inputs == cls.max_inputs else f"{cls.min_inputs} to {cls.max_inputs}"
            self.error((*attrs_path, "inputs"), f"{cls.name} takes {want} input(s), got {n}{note}", "reference",
                       shown=(*path, "inputs"))
            return None
        return resolved

    def _reference(self, ref: str, env: dict, prev: str | None, path: tuple, note: str) -> str | None:
        """A reference as written, or the layer name an expression in it gives: `"${'a' if c else 'b'}"`,
        `"normal_concat_${i}"`, or `$p` for a block input (a layer output). None when that fails (reported)."""
        if not (is_expression(ref) or has_template(ref)):
            return ref
        try:
            value = _substitute(ref, self.tensor_env(env, prev))
        except ExpressionError as exc:
            self.expression_error(exc, path, f"inputs: {exc}{note}")
            return None
        if isinstance(value, Tensor):
            return value.name
        if not isinstance(value, str) or not value:
            self.error(path, f"inputs: `{ref}` gives {value!r}, not the name of a layer{note}", "type",
                       hint="an expression in `inputs:` must give a layer's name, e.g. `\"${'a' if wide else 'b'}\"`")
            return None
        return value

    def _lookup(self, ref, prev, scope):
        if ref == "$input":
            return scope.get("$input")
        if ref == "$prev":
            return prev
        if ref in scope:
            return scope[ref]
        if ref in self.aliases:
            return self.aliases[ref]
        if ref in self.used_names:
            return ref
        return None

    def _reference_error(self, ref, attrs_path, path, scope, note):
        where = (*attrs_path, "inputs")
        if ref in self.explicit or ref in scope:
            line = self.src.locate(self.explicit.get(ref, ()))[0]
            if self.explicit.get(ref) == path:
                self.error(where, f"layer `{ref}` reads its own output (a cycle){note}", "reference",
                           shown=(*path, "inputs"))
                return
            self.error(where, f"`{ref}` is defined later (line {line}); a layer can only read earlier layers{note}",
                       "reference", hint="move this layer below the one it reads", shown=(*path, "inputs"))
            return
        choices = list(self.used_names) + list(self.aliases) + [k for k in scope if not k.startswith("$")]
        hint = did_you_mean(ref, choices) or f"known so far: {', '.join(sorted(choices)[:10])}"
        self.error(where, f"unknown layer or input `{ref}`{note}", "reference", hint, shown=(*path, "inputs"))

    # -- groups -----------------------------------------------------------------------------
    def _group(self, group, path, section, prev, scope, env, block):
        """`- group: {when: COND, name: NAME, layers: [...]}`: layers included together, or not at all.

        A named group's name stands for its last layer's output, or for its input when skipped.
        """
        note = block.note if block else ""
        if not isinstance(group, dict) or not isinstance(group.get("layers"), list) or not group["layers"]:
            self.error(path, "a group is written `- group: {when: \"${...}\", layers: [...]}` with at least one layer",
                       "type")
            return prev
        for key in group:
            if key not in GROUP_KEYS:
                hint = did_you_mean(key, GROUP_KEYS) or f"allowed: {', '.join(GROUP_KEYS)}"
                self.error((*path, key), f"a group has no key `{key}`", "unknown-key", hint, key=True)
        keep: bool | None = True
        if "when" in group:
            keep = self._condition(group["when"], env, prev, (*path, "when"), (*path, "when"), note)
        out = prev
        if keep:
            out = self._layers(group["layers"], (*path, "layers"), section, prev, scope, block=block, env=env)
        name = self._local_name(group.get("name"), env, prev, (*path, "name"), (*path, "name"), note)
        if isinstance(name, str) and out is not None and keep is not None:
            self._bind_use_name(name, out, path, scope, block, note)
        return out

    def _bind_use_name(self, local, target, path, scope, block, note):
        """Give a block use's or group's output a name that later layers can read."""
        full = block.prefix + local if block else local
        if full in self.used_names or full in self.aliases or (block and local in scope):
            self.error((*path, "name"), f"name `{full}` is used twice{note}", "reference",
                       hint="layer, block and group names must be unique in a spec")
            return
        self._bind(local, target, scope, block)

    # -- blocks -----------------------------------------------------------------------------
    def _block_use(self, use, path, section, prev, scope, env, outer):
        """`- block: {use, repeat, with, name, prefix, inputs, when}`: the block's layers, once per repetition.

        A block reads one layer, or the several its definition declares (`inputs: [x, skip]`), and gives
        its last layer, or the several its `outputs:` lists; a repeated use feeds each repetition's
        outputs to the next one's inputs (Python's `x, p = cell(x, p)`). Returns the name of the (first)
        output node, or ``prev`` when nothing was added.
        """
        note = outer.note if outer else ""
        header = self._block_header(use, path)
        if header is None:
            return prev
        name, definition, params, given = header
        declared = definition.get("inputs") or []
        outputs = definition.get("outputs") or ["$prev"]
        if "when" in use:
            keep = self._condition(use["when"], env, prev, (*path, "when"), (*path, "when"), note)
            if not keep:
                sources = self._block_inputs(use, name, declared, path, prev, scope, env, note) if keep is False else None
                if sources is not None:  # a skipped use passes its inputs through
                    self._bind_use_names(use.get("name"), sources, path, scope, outer, note)
                return prev
        repeat = self._repeat(use, definition, path, env, prev, note)
        if repeat is None:
            return prev
        if repeat > 1 and len(outputs) != max(len(declared), 1):
            self.error((*path, "repeat"), f"block `{name}` reads {max(len(declared), 1)} input(s) but gives "
                       f"{len(outputs)} output(s), so one repetition cannot feed the next{note}", "value",
                       hint="declare as many `outputs:` as `inputs:` in the block, or use it without `repeat`")
            return prev
        sources = self._block_inputs(use, name, declared, path, prev, scope, env, note)
        if sources is None:
            return prev
        prev = sources[0]
        label_base = use.get("name") if isinstance(use.get("name"), str) else name
        for r in range(repeat):
            errors_before = len(self.diags)
            index = self.block_index.get(name, 0)
            self.block_index[name] = index + 1
            counters = {"repeat_index": r, "block_index": index}
            if self.block_counts is not None:
                counters["block_count"] = self.block_counts.get(name, 0)
            # The use's own fields are the caller's: evaluated in its scope, with this repetition's counters.
            caller_env = {**self.tensor_env(env, prev), **counters}
            inner_env = self._parameters(name, params, given, caller_env, counters, sources, declared, path, note)
            self.block_uses[label_base] = self.block_uses.get(label_base, 0) + 1
            label = f"{label_base}{self.block_uses[label_base]}"
            prefix = self._prefix(use, label, caller_env, path, outer, note)
            if inner_env is None or prefix is None:
                return prev
            ctx = _BlockCtx(name=name, use_path=path[:-1], label=label, repeat=r, index=index, prefix=prefix)
            self.block_stack.append(name)
            inner_scope = {"$input": prev, **dict(zip(declared, sources, strict=False))}
            try:
                prev = self._layers(definition.get("layers") or [], ("blocks", name, "layers"), section, prev,
                                    inner_scope, block=ctx, env=inner_env)
            finally:
                self.block_stack.pop()
            if len(self.diags) > errors_before and not self.dry:
                sources = [prev] * len(outputs)
                break  # the block is in error: repeating it would only repeat the same errors
            sources = self._block_outputs(name, outputs, inner_env, prev, inner_scope, ctx.note) or [prev] * len(outputs)
            prev = sources[0]
        self._bind_use_names(use.get("name"), sources, path, scope, outer, note)
        return prev

    def _bind_use_names(self, names, nodes, path, scope, block, note) -> None:
        """A use's `name:` (one text for its first output, or a list naming each output) bound to ``nodes``."""
        if isinstance(names, str):
            self._bind_use_name(names, nodes[0], path, scope, block, note)
        elif isinstance(names, list):
            if len(names) != len(nodes):
                self.error((*path, "name"), f"`name` lists {len(names)} name(s) for {len(nodes)} output(s){note}",
                           "value", hint="name every output of the block, in the order of its `outputs:`")
                return
            for local, node in zip(names, nodes, strict=True):
                self._bind_use_name(local, node, path, scope, block, note)

    def _block_outputs(self, name, outputs, env, last, scope, note) -> list[str] | None:
        """The nodes a block definition's `outputs:` names (after one repetition), or None (reported)."""
        nodes = []
        for i, ref in enumerate(outputs):
            where = ("blocks", name, "outputs", i)
            ref = self._reference(ref, env, last, where, note) if isinstance(ref, str) else None
            target = self._lookup(ref, last, scope) if ref is not None else None
            if target is None:
                if ref is not None:
                    self.error(where, f"block `{name}` gives `{ref}`, which is not one of its layers or inputs{note}",
                               "reference", hint="outputs name layers of the block, its inputs, or `$prev`")
                return None
            nodes.append(target)
        return nodes

    def _block_header(self, use, path):
        """The used block (name, definition, params, with-values), or None when the use is refused (reported)."""
        if not isinstance(use, dict) or not isinstance(use.get("use"), str):
            self.error(path, "a block is used as `- block: {use: NAME, repeat: N, with: {...}}`", "type")
            return None
        problems = validate_block_use(use, self.src, path)
        if problems:
            self.diags.extend(problems)
            return None
        blocks = self.data.get("blocks") or {}
        name = use["use"]
        if name not in blocks or not isinstance(blocks[name], dict):
            hint = did_you_mean(name, blocks) or ("define it under `blocks:`" if not blocks else
                                                   f"blocks: {', '.join(blocks)}")
            self.error((*path, "use"), f"unknown block `{name}`", "reference", hint)
            return None
        if len(self.block_stack) >= MAX_NESTING:
            self.error((*path, "use"), f"blocks nest more than {MAX_NESTING} levels deep here", "limit",
                       hint="use fewer levels of blocks inside blocks")
            return None
        if name in self.block_stack:
            cycle = " -> ".join([*self.block_stack[self.block_stack.index(name):], name])
            self.error((*path, "use"), f"block `{name}` uses itself ({cycle}): blocks cannot be recursive",
                       "reference")
            return None
        for key in use:
            if key not in BLOCK_USE_KEYS:
                hint = did_you_mean(key, BLOCK_USE_KEYS) or f"allowed: {', '.join(BLOCK_USE_KEYS)}"
                self.error((*path, key), f"a block use has no key `{key}`", "unknown-key", hint, key=True)
        definition = blocks[name]
        if not definition.get("layers"):
            return None  # an empty block was reported where it is defined; nothing to expand
        params = dict(definition.get("params") or {})
        given = use.get("with") or {}
        if not isinstance(given, dict):
            self.error((*path, "with"), "`with` must be a mapping of parameter values", "type")
            return None
        for key in given:
            if key not in params:
                hint = did_you_mean(key, params) or f"parameters: {', '.join(params) or 'none'}"
                self.error((*path, "with", key), f"block `{name}` has no parameter `{key}`", "unknown-key", hint,
                           key=True)
        for key in params:
            if key in RESERVED:
                self.error(("blocks", name, "params", key), f"`{key}` is a reserved name in expressions; choose "
                           "another", "value", key=True, hint=f"reserved: {', '.join(RESERVED)}")
                return None
        declared = definition.get("inputs") or []
        for i, key in enumerate(declared):
            if key in RESERVED or key in params or key in declared[:i]:
                what = ("a reserved name in expressions" if key in RESERVED else "given twice" if key in declared[:i]
                        else f"also a parameter of block `{name}`")
                self.error(("blocks", name, "inputs", i), f"input name `{key}` is {what}; choose another", "value")
                return None
        return name, definition, params, given

    def _repeat(self, use, definition, path, env, prev, note) -> int | None:
        """The use's `repeat` (evaluated in the caller's scope), or None when it is refused (reported)."""
        repeat = use.get("repeat", 1)
        try:
            repeat = _substitute(repeat, self.tensor_env(env, prev))
        except ExpressionError as exc:
            self.expression_error(exc, (*path, "repeat"), f"repeat: {exc}{note}")
            return None
        if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
            shown = repeat if isinstance(repeat, (int, float, bool)) else type(repeat).__name__
            self.error((*path, "repeat"), f"`repeat` must be an integer >= 1 (got {shown!r}){note}", "value")
            return None
        if repeat > MAX_LAYERS or repeat * max(len(definition.get("layers") or []), 1) > MAX_LAYERS:
            self.error((*path, "repeat"), f"repeat {repeat:,} would create more than {MAX_LAYERS:,} layers", "size")
            return None
        return repeat

    def _block_inputs(self, use, name, declared, path, prev, scope, env, note) -> list[str] | None:
        """The nodes a use's `inputs:` names (default: the previous layer), one per input the block
        declares; None (reported) when they cannot be found."""
        given = use.get("inputs")
        if given is None:
            if len(declared) > 1:
                self.error(path, f"block `{name}` reads {len(declared)} inputs ({', '.join(declared)}): give them "
                           f"with `inputs: [...]`{note}", "missing", hint=f"e.g. `inputs: [$prev, {declared[1]}]`")
                return None
            return [prev]  # None without a previous layer: the block's first layer says which input it reads
        refs = [given] if isinstance(given, str) else given
        if len(declared) <= 1 and (not isinstance(refs, list) or len(refs) != 1):
            self.error((*path, "inputs"), f"a block reads one layer unless its definition declares several "
                       f"(`inputs: [x, skip]`): write `inputs: NAME` (got {refs!r}){note}", "type")
            return None
        if len(declared) > 1 and (not isinstance(refs, list) or len(refs) != len(declared)):
            self.error((*path, "inputs"), f"block `{name}` reads {len(declared)} inputs ({', '.join(declared)}), "
                       f"got {refs!r}{note}", "type", hint=f"write `inputs: [{', '.join(declared)}]` with your layers")
            return None
        nodes = []
        for i, ref in enumerate(refs):
            ref = self._reference(ref, env, prev, (*path, "inputs", *((i,) if isinstance(given, list) else ())), note)
            target = self._lookup(ref, prev, scope) if ref is not None else None
            if target is None:
                if ref is not None:
                    self._reference_error(ref, path, path, scope, note)
                return None
            nodes.append(target)
        return nodes

    def _parameters(self, name, params, given, caller_env, counters, sources, declared, path, note) -> dict | None:
        """The scope of one repetition: vars, counters, `input` and the declared inputs (layer outputs),
        and every parameter in order.

        A `with:` value is evaluated in the caller's scope; a default in the block's own scope, so it
        may use the parameters above it. None when one fails (reported).
        """
        inner_env = {**self.env, **counters}
        inner_env.update({key: Tensor(node, self.shape_of) for key, node in zip(["input", *declared],
                                                                                [sources[0], *sources], strict=False)
                          if node is not None})
        ok = True
        for key, default in params.items():
            try:
                if key in given:
                    inner_env[key] = _substitute(given[key], caller_env)
                else:
                    inner_env[key] = _substitute(default, inner_env)
            except ExpressionError as exc:
                if key in given:
                    self.expression_error(exc, (*path, "with", key), f"{key}: {exc}{note}")
                else:
                    self.expression_error(exc, ("blocks", name, "params", key),
                                          f"{key}: {exc} (block `{name}` used at {format_path(path)})")
                ok = False
        return inner_env if ok else None

    def _prefix(self, use, label, caller_env, path, outer, note) -> str | None:
        """What named layers inside get in front: `prefix:` filled in (after an enclosing explicit
        prefix), or the instance label (`residual2_`). None when the template fails (reported)."""
        if "prefix" not in use:
            return f"{label}_"
        template = use["prefix"]
        try:
            prefix = interpolate(template, caller_env) if isinstance(template, str) else template
        except ExpressionError as exc:
            self.expression_error(exc, (*path, "prefix"), f"prefix: {exc}{note}")
            return None
        if not isinstance(prefix, str):
            self.error((*path, "prefix"), f"`prefix` must be a text such as `block1a_` (got {prefix!r})", "type")
            return None
        return outer.prefix + prefix if outer is not None else prefix  # conv2_ + block1_ -> conv2_block1_

    # -- whole-spec checks ------------------------------------------------------------------
    def _check_loss(self):
        loss = self.data.get("loss")
        if isinstance(loss, dict) and "type" not in loss:
            heads = self.graph.heads
            unknown = [key for key in loss if key not in heads]
            for key in loss:
                if key not in heads:
                    hint = did_you_mean(key, heads) or f"heads: {', '.join(heads) or 'none'}"
                    self.error(("loss", key), f"loss names head `{key}`, which the spec does not have", "reference",
                               hint, key=True)
            if "heads" in self.data and not unknown:
                for head in heads:
                    if head not in loss:
                        self.error(("loss",), f"head `{head}` has no loss", "missing", hint=f"add `{head}: mse` (or another loss) under `loss:`")


def _substitute(value: Any, env: dict) -> Any:
    """``value`` with every expression in it (also inside lists and mappings) evaluated: a whole
    expression keeps its value's kind, a text template (`conv${stage}_block`) gives text."""
    if is_template(value):
        return interpolate(value, env)
    if is_expression(value):
        return evaluate(value, env)
    if isinstance(value, list):
        return [_substitute(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, env) for k, v in value.items()}
    return value


def _sane(data: dict) -> dict:
    """The parts of a spec whose structure is usable after skeleton errors (those are reported)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("encoder", "backbone", "decoder", "head") and isinstance(value, list):
            out[key] = value
        elif key == "inputs" and isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if isinstance(v, dict) and isinstance(v.get("shape"), list)
                        and all((isinstance(d, (int, str)) and not is_huge(d)) or d is None for d in v["shape"])}
        elif key == "heads" and isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if isinstance(v, list)}
        elif key == "blocks" and isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if isinstance(v, dict) and isinstance(v.get("layers"), list)
                        and isinstance(v.get("params") or {}, dict) and _names_list(v.get("inputs"))
                        and _names_list(v.get("outputs"))}
        elif key == "vars" and isinstance(value, dict):
            # only usable values: a list or mapping var was reported and must not feed expressions
            out[key] = {k: v for k, v in value.items() if isinstance(v, (int, float, str, bool)) and not is_huge(v)}
        elif key == "loss" and isinstance(value, (str, dict)):
            out[key] = value
        elif key == "require" and isinstance(value, list):
            out[key] = [item for item in value if isinstance(item, dict) and isinstance(item.get("message"), str)
                        and "check" in item]
        elif key == "name" and isinstance(value, str):
            out[key] = value
    return out


def _names_list(value: Any) -> bool:
    """A block's `inputs:`/`outputs:` usable for expansion: left out, or a list of texts."""
    return value is None or (isinstance(value, list) and all(isinstance(item, str) for item in value))


def _block_counts(src: Source) -> dict[str, int]:
    """How many times each block is expanded in the whole network, for `block_count`.

    Found by a first expansion whose errors are dropped (the real one reports them); so
    `block_count` can size layers (`rate: "${0.2 * block_index / block_count}"`) but cannot decide
    a use's `repeat` or `when` of the block it counts.
    """
    dry = _Expander(src)
    dry.dry = True
    try:
        dry.run()
    except SpecError:
        pass
    return dict(dry.block_index)


def build_graph(src: Source) -> Graph:
    """Validate and expand a loaded spec into a Graph; raises SpecError with every problem."""
    if not isinstance(src.data, dict):
        raise SpecError(src.diagnostic((), "a spec is a mapping with `inputs:`, `encoder:`, ... at the top level",
                                       "type"))
    diags = validate_skeleton(src)
    if diags:
        # Keep going where the structure allows, so layer errors show in the same run.
        src = dataclasses.replace(src, data=_sane(src.data))
    graph, diags = expand_partial(src, diags)
    if diags:
        raise SpecError(diags)
    return graph


def expand_partial(src: Source, diags: list[Diagnostic] | None = None) -> tuple[Graph, list[Diagnostic]]:
    """Expand what is valid, and return it with the problems found (each block problem once).

    Layers with errors are left out and the layers after them read the last good one, so shape
    analysis can still check the rest; nodes placed so carry ``after_error`` (the line of the error).
    """
    counts = _block_counts(src) if "block_count" in src.text else None
    exp = _Expander(src, counts)
    graph = exp.run()
    return graph, once_per_block_definition([*(diags or []), *exp.diags])


_BLOCK_NOTE = re.compile(r" \(in block `([^`]+)` used at ([^)]*)\)")


def once_per_block_definition(diags: list[Diagnostic]) -> list[Diagnostic]:
    """A problem inside a block definition is one problem, however often the block is used."""
    groups: dict[tuple, list[Diagnostic]] = {}
    for d in diags:
        key = (d.file, d.line, d.column, d.code, _BLOCK_NOTE.sub("", d.message))
        groups.setdefault(key, []).append(d)
    out = []
    for (_, _, _, _, bare), same in groups.items():
        first = same[0]
        uses = [m.group(2) for d in same for m in [_BLOCK_NOTE.search(d.message)] if m]
        if len(same) > 1 and uses:
            name = _BLOCK_NOTE.search(first.message).group(1)  # type: ignore[union-attr]
            shown = ", ".join(dict.fromkeys(uses))
            first = dataclasses.replace(first, message=f"{bare} (in block `{name}`, used {len(same)} times: {shown})")
        out.append(first)
    return out
