"""Schema validation with located, readable errors.

The skeleton (sections) is validated first; each layer is then validated against its own
type's fragment, after looking its type up (never one giant ``oneOf``). jsonschema errors
are translated into nnspec's own messages: unknown keys get "did you mean", ranges say
what was received.
"""

from __future__ import annotations

from functools import cache

from nnspec.diagnostics import Diagnostic, did_you_mean
from nnspec.spec.jsonschema_lite import json_type_of
from nnspec.spec.loader import Source


@cache
def _validator_for(key: str):
    from nnspec.spec import schema as sch
    from nnspec.spec.jsonschema_lite import Validator

    if key == "skeleton":
        s = sch.skeleton()
        s["$defs"] = {
            "layer": {},
            "layers": {"$defs": {"input": _layer_fragment("input")}},
            "loss": sch.LOSS_ONE,
            "expression": sch.EXPRESSION,
        }
        return Validator(s)
    if key == "block-use":  # value types only: the expander reports unknown keys itself
        use = {k: v for k, v in sch.BLOCK_USE.items() if k != "additionalProperties"}
        return Validator({**use, "$defs": {"expression": sch.EXPRESSION, "condition": sch.CONDITION}})
    return Validator(_layer_fragment(key))


def _layer_fragment(name: str) -> dict:
    from nnspec.layers.registry import get

    return get(name).schema(strict=True)


MAX_INTEGER = 10**15  # no size, count or seed in a spec comes near this; bigger ones overflow float arithmetic
_LAYER_SECTIONS = ("encoder", "backbone", "decoder", "head", "heads", "blocks")


def validate_skeleton(src: Source) -> list[Diagnostic]:
    diags = translate_errors(_validator_for("skeleton").iter_errors(src.data), src, (), ())
    if isinstance(src.data, dict):
        # Layer attributes are checked per layer (after expressions), so only the other sections here.
        for key, value in src.data.items():
            if key not in _LAYER_SECTIONS:
                diags += huge_integers(value, src, (key,), (key,))
    return diags


def validate_layer(type_name: str, attrs: dict, src: Source, data_path: tuple, shown_path: tuple, note: str = "") -> list[Diagnostic]:
    errors = _validator_for(type_name).iter_errors(attrs)
    diags = translate_errors(errors, src, data_path, shown_path, subject=type_name, note=note)
    return diags + huge_integers(attrs, src, data_path, shown_path, note)


def validate_block_use(use, src: Source, data_path: tuple) -> list[Diagnostic]:
    """Check a `- block: {use: ..., repeat: ..., name: ..., inputs: ...}` item against its schema."""
    return translate_errors(_validator_for("block-use").iter_errors(use), src, data_path, data_path, subject="block")


def is_huge(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INTEGER


def huge_integers(value, src: Source, data_path: tuple, shown_path: tuple, note: str = "") -> list[Diagnostic]:
    """Integers beyond MAX_INTEGER anywhere in ``value``: located errors, before any arithmetic sees them."""
    out: list[Diagnostic] = []
    stack = [(value, data_path, shown_path)]
    while stack and len(out) < 20:
        item, dp, sp = stack.pop()
        if is_huge(item):
            out.append(src.diagnostic(dp, f"a number with {len(str(abs(item)))} digits is too large here "
                                      f"(at most 10^15){note}", "value", shown_path=sp))
        elif isinstance(item, dict):
            stack.extend((v, (*dp, k), (*sp, k)) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, (*dp, i), (*sp, i)) for i, v in enumerate(item))
    return sorted(out)


_MISSING_HINTS = {  # top-level keys: an example of what to write
    "inputs": "add the named inputs, channels-last, e.g. `inputs: {img: {shape: [28, 28, 1]}}`",
}


def _describe(value) -> str:
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return str(value)


_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a text",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def _type_words(t) -> str:
    if isinstance(t, list):
        return " or ".join(_TYPE_WORDS.get(x) or str(x) for x in t)
    return _TYPE_WORDS.get(t, str(t))


def translate_errors(errors, src: Source, data_base: tuple, shown_base: tuple, subject: str = "", note: str = "") -> list[Diagnostic]:
    out: list[Diagnostic] = []
    seen = set()
    for err in sorted(errors, key=lambda e: (list(map(str, e.absolute_path)), e.validator)):
        rel = tuple(err.absolute_path)
        for d in _translate(err, src, data_base, shown_base, rel, subject):
            if d.code == "type" and _whole_float(err.instance) and not d.hint:
                d = Diagnostic(**{**d.to_dict(), "hint": f"write {int(err.instance)}: this attribute takes an integer, "
                                  "and a number with a decimal point is a float", "source_line": d.source_line})
            if note:
                d = Diagnostic(**{**d.to_dict(), "message": d.message + note, "source_line": d.source_line})
            key = (d.line, d.column, d.message)
            if key not in seen:
                seen.add(key)
                out.append(d)
    return out


def _whole_float(value) -> bool:
    return isinstance(value, float) and value.is_integer() and abs(value) < 1e18


def _translate(err, src, data_base, shown_base, rel, subject):
    kw = err.validator
    data_path = (*data_base, *rel)
    shown = (*shown_base, *rel)
    field = str(rel[-1]) if rel else (subject or "the spec")
    if len(rel) >= 2 and isinstance(rel[-1], int):
        field = f"{rel[-2]}[{rel[-1]}]"
    where = f"`{field}`"
    if subject and rel:
        where = f"{subject} `{'.'.join(map(str, rel))}`"
    value = err.instance
    if kw == "additionalProperties":
        allowed = list(err.schema.get("properties", {}))
        extras = [k for k in value if k not in allowed] if isinstance(value, dict) else []
        for key in extras:
            owner = subject or (".".join(map(str, shown)) or "the spec")
            hint = did_you_mean(key, allowed) or (f"allowed: {', '.join(allowed)}" if allowed else "")
            yield src.diagnostic(
                (*data_path, key), f"{owner} has no attribute `{key}`" if subject else f"unknown key `{key}` in {owner}",
                "unknown-key", hint, key=True, shown_path=(*shown, key),
            )
        if not extras and "additionalProperties" in err.schema and err.schema["additionalProperties"] is not False:
            yield src.diagnostic(data_path, err.message, "type", shown_path=shown)
        return
    if kw == "required":
        missing = [k for k in err.validator_value if not isinstance(value, dict) or k not in value]
        for key in missing:
            owner = subject or (".".join(map(str, shown)) or "the spec")
            hint = _MISSING_HINTS.get(key, f"add `{key}: ...`") if not rel else f"add `{key}: ...`"
            yield src.diagnostic(data_path, f"{owner} needs `{key}`", "missing", hint=hint,
                                 key=bool(rel), shown_path=shown)
        return
    if kw == "type":
        hint = ""
        if isinstance(value, str) and "number" in str(err.validator_value) and _is_float_text(value):
            hint = f"YAML reads `{value}` as text: write it with a dot and a signed exponent, e.g. " \
                   f"`{float(value):.1e}`"
        yield src.diagnostic(data_path, f"{where} must be {_type_words(err.validator_value)} (got {_describe(value)})",
                             "type", hint, shown_path=shown)
        return
    if kw in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        sign = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[kw]
        yield src.diagnostic(data_path, f"{where} must be {sign} {err.validator_value:g} (got {_describe(value)})",
                             "value", shown_path=shown)
        return
    if kw == "enum":
        choices = [str(c) for c in err.validator_value]
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        listing = ", ".join(choices) if len(choices) <= 12 else ", ".join(choices[:12]) + ", ..."
        yield src.diagnostic(data_path, f"{where} must be one of {listing} (got {_describe(value)})", "value", hint,
                             shown_path=shown)
        return
    if kw in ("anyOf", "oneOf"):
        # Prefer the alternative whose type matches the value, and report its error.
        best = _best_context(err)
        if best is not None:
            yield from _translate(best, src, data_base, shown_base, tuple(best.absolute_path), subject)
            return
        expects = _expects(err.schema)
        yield src.diagnostic(data_path, f"{where} must be {expects} (got {_describe(value)})", "type", shown_path=shown)
        return
    if kw in ("minItems", "maxItems"):
        yield src.diagnostic(data_path, f"{where} must have {'at least' if kw == 'minItems' else 'at most'} "
                             f"{err.validator_value} item(s) (got {len(value)})", "value", shown_path=shown)
        return
    if kw == "minProperties":
        yield src.diagnostic(data_path, f"{where} must not be empty", "missing", shown_path=shown)
        return
    if kw == "pattern":
        is_key = bool(rel) and value == rel[-1]
        yield src.diagnostic(data_path, f"{_describe(value)} is not a valid name: use letters, digits and _, "
                             "starting with a letter", "value", key=is_key, shown_path=shown)
        return
    yield src.diagnostic(data_path, f"{where}: {err.message}", "value", shown_path=shown)


def _is_float_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _best_context(err):
    """The sub-error of an anyOf to report: from the alternative that fits the value best.

    An alternative fits when it accepts the value's JSON type; among those, one that declares more of
    a mapping's keys wins (``{type: ..., wieght: 2}`` is a loss with options, not a loss per head), then
    the deepest error. Errors of the wrong type only are never chosen.
    """
    vt = json_type_of(err.instance)
    keys = set(err.instance) if isinstance(err.instance, dict) else set()
    candidates = []
    for sub in err.context or ():
        if sub.accepts:
            types = set(sub.accepts)
        else:  # an error without alternative information: judge by its own schema
            t = sub.schema.get("type")
            types = set(t if isinstance(t, list) else [t] if t else [])
            if "enum" in sub.schema and any(isinstance(c, str) for c in sub.schema["enum"]):
                types.add("string")
        if vt == "integer" and "number" in types:
            types.add("integer")
        deeper = len(sub.absolute_path) > len(err.absolute_path)  # inside a container the alternative accepted
        top_level_type = sub.validator == "type" and tuple(sub.absolute_path) == tuple(err.absolute_path)
        if deeper or (vt in types and not top_level_type):
            candidates.append(sub)
    if not candidates:
        return None
    return max(candidates, key=lambda e: (len(keys & set(e.declares)), len(e.absolute_path)))


def _expects(schema: dict) -> str:
    parts = []
    for alt in schema.get("anyOf", []) + schema.get("oneOf", []):
        if "enum" in alt:
            parts.append("one of " + ", ".join(map(str, alt["enum"][:8])))
        elif "$ref" in alt:
            parts.append("an expression ($name)" if "expression" in alt["$ref"] else "a mapping")
        elif "type" in alt:
            t = alt["type"]
            if t == "array" and "minItems" in alt and alt.get("minItems") == alt.get("maxItems"):
                parts.append(f"a list of {alt['minItems']}")
            else:
                parts.append(_type_words(t))
    return " or ".join(dict.fromkeys(parts)) or "a valid value"
