"""A small JSON Schema (draft 2020-12) validator for the keywords nnspec's schema uses.

Why not the `jsonschema` package at run time: importing it costs about as much as the
rest of `nnspec check` together, and check must start in a fraction of a second. One
function per keyword, one explicit table. The published schema is the same document;
tests validate every spec and a set of broken ones with the real `jsonschema` package
too and assert both agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache


@dataclass
class ValidationError:
    validator: str  # the keyword that failed
    validator_value: object
    instance: object
    schema: dict
    absolute_path: tuple = ()
    context: list = field(default_factory=list)
    message: str = ""
    # Set on errors inside an anyOf: what the alternative they come from accepts, so a translator can
    # report the alternative that fits the value (its JSON types, and the keys it declares).
    accepts: frozenset = frozenset()
    declares: frozenset = frozenset()


def _is_type(value, t: str) -> bool:
    if t == "integer":
        # Stricter than JSON Schema on purpose: 10.0 is not an integer here. A float that reaches a
        # layer size passes every check and then fails inside the framework (or prints "(None, 10.0)").
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "string":
        return isinstance(value, str)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "object":
        return isinstance(value, dict)
    if t == "array":
        return isinstance(value, list)
    if t == "null":
        return value is None
    return False


def _num(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@lru_cache(maxsize=256)
def _regex(pattern: str):
    return re.compile(pattern)


class Validator:
    """Validates instances against one root schema (``$ref`` resolves within it)."""

    def __init__(self, schema: dict):
        self.root = schema

    def iter_errors(self, instance, schema: dict | None = None, path: tuple = ()):
        schema = self.root if schema is None else schema
        if schema is True or schema == {}:
            return
        if schema is False:
            yield ValidationError("false", False, instance, {}, path, message="nothing is allowed here")
            return
        if "$ref" in schema:
            yield from self.iter_errors(instance, self._resolve(schema["$ref"]), path)
        for keyword, check in _KEYWORDS.items():
            if keyword in schema:
                yield from check(self, schema[keyword], instance, schema, path)

    def is_valid(self, instance, schema=None) -> bool:
        return next(iter(self.iter_errors(instance, schema)), None) is None

    def _resolve(self, ref: str) -> dict:
        if not ref.startswith("#/"):
            raise ValueError(f"only local references are supported: {ref}")
        node = self.root
        for part in ref[2:].split("/"):
            node = node[part]
        return node


def _error(keyword, value, instance, schema, path, message, context=None):
    return ValidationError(keyword, value, instance, schema, path, context or [], message)


def _type(v, types, instance, schema, path):
    names = types if isinstance(types, list) else [types]
    if not any(_is_type(instance, t) for t in names):
        yield _error("type", types, instance, schema, path, f"{instance!r} is not of type {types}")


def _enum(v, choices, instance, schema, path):
    if not any(instance == c and type(instance) is type(c) or (_num(instance) and _num(c) and instance == c)
               for c in choices):
        yield _error("enum", choices, instance, schema, path, f"{instance!r} is not one of {choices}")


def _bound(keyword, test):
    def check(v, limit, instance, schema, path):
        if _num(instance) and not test(instance, limit):
            yield _error(keyword, limit, instance, schema, path, f"{instance} fails {keyword} {limit}")

    return check


def _min_length(v, n, instance, schema, path):
    if isinstance(instance, str) and len(instance) < n:
        yield _error("minLength", n, instance, schema, path, "too short")


def _max_length(v, n, instance, schema, path):
    if isinstance(instance, str) and len(instance) > n:
        yield _error("maxLength", n, instance, schema, path, "too long")


def _pattern(v, pattern, instance, schema, path):
    if isinstance(instance, str) and not _regex(pattern).search(instance):
        yield _error("pattern", pattern, instance, schema, path, f"{instance!r} does not match {pattern!r}")


def _items(v, sub, instance, schema, path):
    if isinstance(instance, list):
        for i, item in enumerate(instance):
            yield from v.iter_errors(item, sub, (*path, i))


def _min_items(v, n, instance, schema, path):
    if isinstance(instance, list) and len(instance) < n:
        yield _error("minItems", n, instance, schema, path, "too few items")


def _max_items(v, n, instance, schema, path):
    if isinstance(instance, list) and len(instance) > n:
        yield _error("maxItems", n, instance, schema, path, "too many items")


def _properties(v, props, instance, schema, path):
    if isinstance(instance, dict):
        for key, sub in props.items():
            if key in instance:
                yield from v.iter_errors(instance[key], sub, (*path, key))


def _additional(v, sub, instance, schema, path):
    if not isinstance(instance, dict):
        return
    known = schema.get("properties", {})
    extras = [k for k in instance if k not in known]
    if sub is False:
        if extras:
            yield _error("additionalProperties", False, instance, schema, path, f"unexpected {extras}")
        return
    for key in extras:
        yield from v.iter_errors(instance[key], sub, (*path, key))


def _property_names(v, sub, instance, schema, path):
    if isinstance(instance, dict):
        for key in instance:
            for err in v.iter_errors(key, sub, path):
                err.absolute_path = (*path, key)  # located at the key itself
                yield err


def _required(v, names, instance, schema, path):
    if isinstance(instance, dict) and any(n not in instance for n in names):
        yield _error("required", names, instance, schema, path, "missing required properties")


def _min_properties(v, n, instance, schema, path):
    if isinstance(instance, dict) and len(instance) < n:
        yield _error("minProperties", n, instance, schema, path, "too few properties")


def _max_properties(v, n, instance, schema, path):
    if isinstance(instance, dict) and len(instance) > n:
        yield _error("maxProperties", n, instance, schema, path, "too many properties")


def json_type_of(value) -> str:
    """The JSON Schema type name of a plain YAML/JSON value (bool before int, as JSON sees them)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _shape_of(v, schema: dict, depth: int = 0) -> tuple[frozenset, frozenset]:
    """The JSON types an (alternative) schema accepts and the object keys it declares."""
    if depth > 20:
        return frozenset(), frozenset()
    if "$ref" in schema:
        return _shape_of(v, v._resolve(schema["$ref"]), depth + 1)
    types: set = set()
    keys: set = set(schema.get("properties", {}))
    if "type" in schema:
        t = schema["type"]
        types.update(t if isinstance(t, list) else [t])
    if "enum" in schema:
        types.update(json_type_of(c) for c in schema["enum"])
    for alt in schema.get("anyOf", []):
        t2, k2 = _shape_of(v, alt, depth + 1)
        types |= t2
        keys |= k2
    return frozenset(types), frozenset(keys)


def _any_of(v, alternatives, instance, schema, path):
    context = []
    for alt in alternatives:
        errors = list(v.iter_errors(instance, alt, path))
        if not errors:
            return
        accepts, declares = _shape_of(v, alt)
        for e in errors:
            e.accepts, e.declares = accepts, declares
        context.extend(errors)
    yield _error("anyOf", alternatives, instance, schema, path, "matches none of the alternatives", context)


_KEYWORDS = {
    "type": _type,
    "enum": _enum,
    "minimum": _bound("minimum", lambda x, m: x >= m),
    "maximum": _bound("maximum", lambda x, m: x <= m),
    "exclusiveMinimum": _bound("exclusiveMinimum", lambda x, m: x > m),
    "exclusiveMaximum": _bound("exclusiveMaximum", lambda x, m: x < m),
    "minLength": _min_length,
    "maxLength": _max_length,
    "pattern": _pattern,
    "items": _items,
    "minItems": _min_items,
    "maxItems": _max_items,
    "required": _required,
    "properties": _properties,
    "additionalProperties": _additional,
    "propertyNames": _property_names,
    "minProperties": _min_properties,
    "maxProperties": _max_properties,
    "anyOf": _any_of,
}

SUPPORTED = set(_KEYWORDS) | {"$ref", "$defs", "$schema", "$id", "title", "description", "default"}
