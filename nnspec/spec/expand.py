"""Expansion: layer items -> Graph IR.

Resolves layer types (with "did you mean"), validates each layer's attributes against its
own fragment, evaluates computed attributes, expands reusable blocks (with `repeat`),
fills defaults, names layers as Keras would (conv2d, conv2d_1, ...) and wires inputs.
All problems are collected and raised together.
"""

from __future__ import annotations

import dataclasses

from nnspec.diagnostics import Diagnostic, did_you_mean
from nnspec.errors import SpecError
from nnspec.layers import registry
from nnspec.spec.expr import ExpressionError, evaluate, is_expression
from nnspec.spec.graph import Graph, Node
from nnspec.spec.loader import Source, format_path
from nnspec.spec.validate import validate_layer, validate_skeleton

MAX_LAYERS = 100_000


class _Expander:
    def __init__(self, src: Source):
        self.src = src
        self.data = src.data
        self.diags: list[Diagnostic] = []
        self.graph = Graph(name=str(self.data.get("name") or "model"))
        self.counters: dict[str, int] = {}
        self.block_uses: dict[str, int] = {}
        self.block_stack: list[str] = []  # blocks being expanded, to refuse a block that uses itself
        self.env = dict(self.data.get("vars") or {})
        self.explicit = self._explicit_names()
        self.used_names: set[str] = set()

    # -- helpers ----------------------------------------------------------------------------
    def error(self, path, message, code, hint="", key=False, shown=None):
        self.diags.append(self.src.diagnostic(path, message, code, hint, key=key, shown_path=shown))

    def _explicit_names(self) -> dict[str, tuple]:
        """Names users gave to layers anywhere in the sections (for 'defined later' errors)."""
        names: dict[str, tuple] = {}
        for section, items in self._section_lists():
            for i, item in enumerate(items):
                if isinstance(item, dict) and len(item) == 1:
                    (_, attrs), = item.items()
                    if isinstance(attrs, dict) and isinstance(attrs.get("name"), str):
                        names.setdefault(attrs["name"], (*section, i))
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
            if name not in self.used_names and name not in self.explicit:
                return name

    # -- main -------------------------------------------------------------------------------
    def run(self) -> Graph:
        d = self.data
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

    def _add_input(self, name, attrs):
        path = ("inputs", name)
        if not isinstance(attrs, dict):
            return  # the skeleton already reported it
        if name in self.explicit:
            self.error(self.explicit[name], f"layer name `{name}` is already used by a graph input", "reference")
        self.used_names.add(name)
        node = Node(name=name, type="input", attrs={"shape": list(attrs.get("shape", [])),
                                                     "dtype": attrs.get("dtype", "float32")},
                    inputs=[], section="inputs", path=path, attrs_path=path)
        self.graph.add(node)
        self.graph.inputs.append(name)

    # -- layers -----------------------------------------------------------------------------
    def _layers(self, items, base, section, prev, scope, head_name=None, block=None, env=None):
        """Add a list of layer items; returns the name of the last node (or prev)."""
        env = self.env if env is None else env
        for i, item in enumerate(items):
            path = (*base, i)
            is_last = i == len(items) - 1
            if isinstance(item, dict) and len(item) == 1 and "block" in item:
                prev = self._block_use(item["block"], (*path, "block"), section, prev, scope, env)
                continue
            parsed = self._parse_item(item, path)
            if parsed is None:
                continue
            type_name, attrs, attrs_path = parsed
            default_name = head_name if (head_name and is_last) else None
            prev = self._layer(type_name, attrs, path, attrs_path, section, prev, scope, env, block, default_name) or prev
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
            choices = [n for n in registry.all_names_and_aliases() if n != "input"] + ["block"]
            hint = did_you_mean(type_name, choices) or "`nnspec layers` lists the catalog"
            self.error(path if isinstance(item, str) else (*path, type_name), f"unknown layer type `{type_name}`",
                       "unknown-layer", hint, key=not isinstance(item, str), shown=path)
            return None
        cls = registry.get(canonical)
        if raw is None:
            raw = {}
        elif not isinstance(raw, dict):
            if cls.primary is None:
                self.error(attrs_path, f"{canonical} takes a mapping of attributes (got {raw!r})", "type",
                           hint=f"write `- {type_name}: {{...}}` or `- {type_name}`")
                return None
            raw = {cls.primary: raw}
        return canonical, raw, attrs_path

    def _layer(self, type_name, raw, path, attrs_path, section, prev, scope, env, block, default_name):
        cls = registry.get(type_name)
        note = f" (in block `{block[0]}` used at {format_path(block[1])})" if block else ""
        attrs = {}
        ok = True
        failed = []
        for key, value in raw.items():
            if key in ("name", "inputs"):
                attrs[key] = value
                continue
            try:
                attrs[key] = _substitute(value, env)
            except ExpressionError as exc:
                self.error((*attrs_path, key), f"{key}: {exc}{note}", "expression", shown=(*path, key))
                failed.append(f"`{key}`")
                ok = False
        errors = validate_layer(type_name, attrs, self.src, attrs_path, path, note=note)
        # An attribute whose expression failed is not also "missing".
        errors = [e for e in errors if not (e.code == "missing" and any(f in e.message for f in failed))]
        if errors:
            self.diags.extend(errors)
            ok = False
        # Inputs are resolved even when attributes are wrong, so reference errors show too.
        inputs = self._resolve_inputs(attrs.get("inputs"), cls, path, attrs_path, prev, scope, note)
        if not ok or inputs is None:
            name = attrs.get("name")
            if isinstance(name, str):
                scope[name] = name  # keep later references quiet
            return None
        values = {**cls.defaults(), **{k: v for k, v in attrs.items() if k not in ("name", "inputs")}}
        local = attrs.get("name")
        if local is not None:
            name = f"{block[2]}_{local}" if block else local
        elif default_name:
            name = default_name
        else:
            name = self.auto_name(cls.auto_name())
        if name in self.used_names:
            self.error((*attrs_path, "name"), f"layer name `{name}` is used twice", "reference",
                       hint="layer names must be unique in a spec", shown=(*path, "name"))
            return None
        self.used_names.add(name)
        if local is not None:
            scope[local] = name
        node = Node(
            name=name, type=type_name, attrs={k: v for k, v in values.items() if k != "trainable"},
            inputs=inputs, section=section, path=path, attrs_path=attrs_path,
            block=block[2] if block else None, block_name=block[0] if block else None,
            repeat=block[3] if block else None, trainable=values.get("trainable", True),
        )
        self.graph.add(node)
        return name

    def _resolve_inputs(self, given, cls, path, attrs_path, prev, scope, note):
        if given is None:
            if cls.min_inputs > 1:
                self.error(attrs_path, f"{cls.name} merges {cls.min_inputs} or more tensors: name them with "
                           f"`inputs: [a, b]`{note}", "missing", hint="give the layers to merge a `name:` and list them",
                           shown=path)
                return None
            if prev is None:
                names = ", ".join(self.graph.inputs)
                self.error(attrs_path, f"this spec has several inputs ({names}); say which one this layer reads "
                           f"with `inputs:`{note}", "missing", shown=path)
                return None
            return [prev]
        names = [given] if isinstance(given, str) else list(given)
        resolved = []
        for ref in names:
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

    def _lookup(self, ref, prev, scope):
        if ref == "$input":
            return scope.get("$input")
        if ref == "$prev":
            return prev
        if ref in scope:
            return scope[ref]
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
        choices = list(self.used_names) + [k for k in scope if not k.startswith("$")]
        hint = did_you_mean(ref, choices) or f"known so far: {', '.join(sorted(choices)[:10])}"
        self.error(where, f"unknown layer or input `{ref}`{note}", "reference", hint, shown=(*path, "inputs"))

    # -- blocks -----------------------------------------------------------------------------
    def _block_use(self, use, path, section, prev, scope, env):
        if not isinstance(use, dict) or not isinstance(use.get("use"), str):
            self.error(path, "a block is used as `- block: {use: NAME, repeat: N, with: {...}}`", "type")
            return prev
        blocks = self.data.get("blocks") or {}
        name = use["use"]
        if name not in blocks or not isinstance(blocks[name], dict):
            hint = did_you_mean(name, blocks) or ("define it under `blocks:`" if not blocks else
                                                   f"blocks: {', '.join(blocks)}")
            self.error((*path, "use"), f"unknown block `{name}`", "reference", hint)
            return prev
        if name in self.block_stack:
            cycle = " -> ".join([*self.block_stack[self.block_stack.index(name):], name])
            self.error((*path, "use"), f"block `{name}` uses itself ({cycle}): blocks cannot be recursive",
                       "reference")
            return prev
        definition = blocks[name]
        params = dict(definition.get("params") or {})
        given = use.get("with") or {}
        if not isinstance(given, dict):
            self.error((*path, "with"), "`with` must be a mapping of parameter values", "type")
            return prev
        for key in given:
            if key not in params:
                hint = did_you_mean(key, params) or f"parameters: {', '.join(params) or 'none'}"
                self.error((*path, "with", key), f"block `{name}` has no parameter `{key}`", "unknown-key", hint,
                           key=True)
        repeat = use.get("repeat", 1)
        try:
            repeat = _substitute(repeat, env)
        except ExpressionError as exc:
            self.error((*path, "repeat"), f"repeat: {exc}", "expression")
            return prev
        if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
            self.error((*path, "repeat"), f"`repeat` must be an integer >= 1 (got {repeat!r})", "value")
            return prev
        if repeat * len(definition.get("layers") or []) > MAX_LAYERS:
            self.error((*path, "repeat"), f"repeat {repeat:,} would create more than {MAX_LAYERS:,} layers", "size")
            return prev
        if use.get("inputs") is not None:
            refs = [use["inputs"]] if isinstance(use["inputs"], str) else use["inputs"]
            target = self._lookup(refs[0], prev, scope) if refs else None
            if target is None:
                self._reference_error(refs[0] if refs else "", path, path, scope, "")
                return prev
            prev = target
        prefix = use.get("name") or name
        for r in range(repeat):
            block_env = {**env, **params, **given, "repeat_index": r}
            try:
                block_env = {k: _substitute(v, block_env) for k, v in block_env.items()}
            except ExpressionError as exc:
                self.error((*path, "with"), f"block parameter: {exc}", "expression")
                return prev
            self.block_uses[prefix] = self.block_uses.get(prefix, 0) + 1
            label = f"{prefix}{self.block_uses[prefix]}"
            local_scope = {"$input": prev}
            items = definition.get("layers") or []
            self.block_stack.append(name)
            try:
                prev = self._layers(items, ("blocks", name, "layers"), section, prev, local_scope,
                                    block=(name, path[:-1], label, r), env=block_env)
            finally:
                self.block_stack.pop()
        return prev

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


def _substitute(value, env):
    if is_expression(value):
        return evaluate(value, env)
    if isinstance(value, list):
        return [_substitute(v, env) for v in value]
    return value


def _sane(data: dict) -> dict:
    """The parts of a spec whose structure is usable after skeleton errors (those are reported)."""
    out = {}
    for key, value in data.items():
        if key in ("encoder", "backbone", "decoder", "head") and isinstance(value, list):
            out[key] = value
        elif key == "inputs" and isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if isinstance(v, dict) and isinstance(v.get("shape"), list)
                        and all(isinstance(d, (int, str)) or d is None for d in v["shape"])}
        elif key == "heads" and isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if isinstance(v, list)}
        elif key == "blocks" and isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if isinstance(v, dict) and isinstance(v.get("layers"), list)
                        and isinstance(v.get("params") or {}, dict)}
        elif key == "vars" and isinstance(value, dict):
            out[key] = value
        elif key == "loss" and isinstance(value, (str, dict)):
            out[key] = value
        elif key == "name" and isinstance(value, str):
            out[key] = value
    return out


def build_graph(src: Source) -> Graph:
    """Validate and expand a loaded spec into a Graph; raises SpecError with every problem."""
    if not isinstance(src.data, dict):
        raise SpecError(src.diagnostic((), "a spec is a mapping with `inputs:`, `encoder:`, ... at the top level",
                                       "type"))
    diags = validate_skeleton(src)
    if diags:
        # Keep going where the structure allows, so layer errors show in the same run.
        src = dataclasses.replace(src, data=_sane(src.data))
    exp = _Expander(src)
    graph = exp.run()
    diags = diags + exp.diags
    if diags:
        raise SpecError(diags)
    return graph
