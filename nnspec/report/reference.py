"""``docs/reference.md``: the reference of every section, option and layer, generated from the schema and catalog.

The JSON Schema (:func:`nnspec.spec.schema.full_schema`) already holds every key, its type, its range and a
description ending in ``Default: ...``; the layer catalog holds every attribute. This module writes them out as
Markdown tables, one small function per part, so the reference cannot drift from what the validator accepts
(a test regenerates it and fails when the committed file differs; every example is checked by the validator).
"""

from __future__ import annotations

import json
import re

import yaml

GENERATED_BY = "nnspec docs -o docs/reference.md"
_DEFAULT = re.compile(r"\s*Default: (.+?)\.(?=\s|$)")

# Examples that read better than the ones derived from a default or a range (keys are spec paths).
EXAMPLES: dict[tuple, object] = {
    ("train", "epochs"): 15,
    ("train", "optimizer"): {"type": "sgd", "lr": 0.01, "momentum": 0.9, "nesterov": True},
    ("train", "lr"): 0.001,
    ("train", "schedule"): {"type": "cosine", "min_lr": 0.0001},
    ("train", "schedule", "gamma"): 0.5,
    ("train", "schedule", "max_lr"): 0.01,
    ("train", "validation_split"): 0.1,
    ("data", "validation_split"): 0.2,
    ("train", "schedule", "type"): "step",
    ("train", "schedule", "monitor"): "val_accuracy",
    ("train", "early_stopping"): {"monitor": "val_accuracy", "patience": 5},
    ("train", "early_stopping", "monitor"): "val_accuracy",
    ("train", "metrics"): ["accuracy", "top_k_accuracy"],
    ("train", "gradient_clip"): 1.0,
    ("train", "label_smoothing"): 0.1,
    ("train", "ensemble"): 10,
    ("train", "mixed_precision"): True,
    ("train", "compile"): True,
    ("train", "log"): ["tensorboard", "mlflow"],
    ("train", "precision"): "bf16",
    ("data", "path"): "data/train.npz",
    ("data", "test_path"): "data/test.npz",
    ("data", "target"): "label",
    ("data", "features"): ["x1", "x2"],
    ("data", "image_size"): [64, 64],
    ("data", "test_split"): 0.2,
    ("data", "limit"): 2000,
    ("data", "test_limit"): 1000,
    ("data", "scale"): 0.5,
    ("data", "normalize"): {"mean": 0.286, "std": 0.353},
    ("data", "normalize", "mean"): 0.286,
    ("data", "normalize", "std"): 0.353,
    ("data", "labels"): "one_hot",
    ("data", "augment"): {"flip_horizontal": True, "translate": 0.1},
    ("data", "augment", "translate"): 0.1,
    ("data", "rotate"): {"range": 45, "target": True},
    ("data", "rotate", "range"): 45,
    ("data", "rotate", "head"): "angle",
    ("loss", "type"): "huber",
    ("loss", "weight"): 0.5,
    ("loss", "label_smoothing"): 0.1,
    ("loss", "from_logits"): True,
}


# --- describing schema fragments ------------------------------------------------------------------
def _number(schema: dict) -> str:
    word = "integer" if schema.get("type") == "integer" else "number"
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if low is not None and high is not None:
        left = "[" if "minimum" in schema else "("
        right = "]" if "maximum" in schema else ")"
        return f"{word} in {left}{low:g}, {high:g}{right}"
    if low is not None:
        return f"{word} {'≥' if 'minimum' in schema else '>'} {low:g}"
    if high is not None:
        return f"{word} {'≤' if 'maximum' in schema else '<'} {high:g}"
    return word


def type_text(schema: dict) -> str:
    """Plain words for what a schema fragment accepts: ``integer ≥ 1``, ``one of `adam`, `sgd```, ..."""
    if "enum" in schema:
        values = schema["enum"]
        return "`true`" if values == [True] else "one of " + ", ".join(f"`{_scalar(v)}`" for v in values)
    if "anyOf" in schema:
        return " or ".join(dict.fromkeys(type_text(alt) for alt in schema["anyOf"]))
    if "$ref" in schema:
        return {"#/$defs/loss": "a loss", "#/$defs/expression": "an expression (`$name`)", "#/$defs/layer": "layers",
                "#/$defs/layers/input": "inputs ({shape, dtype})",
                "#/$defs/layers/$defs/input": "inputs ({shape, dtype})"}.get(schema["$ref"], "a mapping")
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(type_text({"type": k}) for k in kind)
    if kind in ("integer", "number"):
        return _number(schema)
    if kind == "array":
        items = schema.get("items", {})
        size = schema.get("minItems") if schema.get("minItems") == schema.get("maxItems") else None
        return f"list of {size} × {type_text(items)}" if size else f"list of {type_text(items)}"
    if kind == "object":
        values = schema.get("additionalProperties")
        if schema.get("properties") or not isinstance(values, dict):
            return "mapping"
        return f"mapping of names to {type_text(values)}" if values.get("type") != "object" else "mapping of names"
    return {"boolean": "`true` or `false`", "string": "text", "null": "nothing"}.get(str(kind), "any value")


def _scalar(value) -> str:
    return json.dumps(value) if isinstance(value, bool) or value is None else str(value)


def split_description(schema: dict) -> tuple[str, str]:
    """(description without its ``Default: ...`` sentence, the default as written) for one option."""
    text = schema.get("description") or next(
        (alt["description"] for alt in schema.get("anyOf", []) if alt.get("description")), "")
    match = _DEFAULT.search(text)
    if not match:
        return text.strip(), "—"
    return (text[: match.start()] + text[match.end():]).strip(), match.group(1)


def example_value(schema: dict, path: tuple):
    """A value that the validator accepts for ``path``: hand-picked, else the default, else one derived from the
    type."""
    if path in EXAMPLES:
        return EXAMPLES[path]
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return example_value(schema["anyOf"][0], path)
    _, default = split_description(schema)
    number = re.match(r"[-+]?\d+(\.\d*)?([eE][-+]?\d+)?(?=\s|$)", default)
    value = (float(number.group()) if number.group(1) or number.group(2) else int(number.group())) if number else None
    kind = schema.get("type")
    if kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if kind == "boolean":
        return True
    if kind == "integer":
        return int(schema.get("minimum", 1)) or 1
    if kind == "number":
        return 0.5 if schema.get("exclusiveMaximum") == 1 else 1.0
    if kind == "string":
        return "name"
    raise ValueError(f"no example for {'.'.join(map(str, path))}: add one to nnspec.report.reference.EXAMPLES")


def example_yaml(path: tuple, value) -> str:
    """``("train", "optimizer"), {"lr": 0.1}`` -> ``train: {optimizer: {lr: 0.1}}`` (one line of YAML)."""
    data = value
    for key in reversed(path[1:]):
        data = {key: data}
    text = yaml.safe_dump(data, default_flow_style=True, sort_keys=False, width=1000).strip()
    return f"{path[0]}: {text.removesuffix(chr(10) + '...').strip()}"


# --- the parts of the page ------------------------------------------------------------------------
def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _mapping_of(schema: dict) -> dict | None:
    """The mapping form of an option that has named options (a mapping, or a name-or-mapping like `optimizer`)."""
    if schema.get("type") == "object" and schema.get("properties"):
        return schema
    for alt in schema.get("anyOf", []):
        if alt.get("type") == "object" and alt.get("properties"):
            return alt
    return None


def option_example(path: tuple, key: str, mapping: dict) -> dict:
    """The example of option ``key`` as the whole mapping at ``path``: the option, after the keys it needs beside it
    (``{type: adam, lr: 0.001}``, since an optimiser mapping needs its `type`)."""
    value = {r: example_value(mapping["properties"][r], (*path, r)) for r in mapping.get("required", []) if r != key}
    value[key] = example_value(mapping["properties"][key], (*path, key))
    return value


def options_table(title: str, path: tuple, mapping: dict, intro: str = "") -> list[str]:
    """A section's options, one row each, then one table per option that is itself a mapping."""
    lines = [title, ""]
    if intro:
        lines += [intro, ""]
    lines += ["| option | type | default | description | example |", "|---|---|---|---|---|"]
    nested = []
    for key, schema in mapping["properties"].items():
        description, default = split_description(schema)
        example = example_yaml(path, option_example(path, key, mapping))
        required = " Required." if key in mapping.get("required", []) else ""
        lines.append(f"| `{key}` | {_cell(type_text(schema))} | {_cell(default)} | {_cell(description + required)} | "
                     f"`{_cell(example)}` |")
        sub = _mapping_of(schema)
        if sub:
            nested.append((key, schema, sub))
    lines.append("")
    for key, schema, sub in nested:
        depth = title.split(" ")[0] + "#"
        lines += options_table(f"{depth} `{'.'.join((*path, key))}`", (*path, key), sub, split_description(schema)[0])
    return lines


def sections_part(schema: dict) -> list[str]:
    lines = ["## Sections", "", "A spec is one YAML mapping with these keys (only `inputs` is required).", "",
             "| key | type | description |", "|---|---|---|"]
    for key, sub in schema["properties"].items():
        description = split_description(sub)[0] or {"description": "Free text about the model."}.get(key, "")
        lines.append(f"| `{key}` | {_cell(type_text(sub))} | {_cell(description)} |")
    return [*lines, ""]


def loss_part(schema: dict) -> list[str]:
    one = schema["$defs"]["loss"]
    names = next(alt["enum"] for alt in one["anyOf"] if "enum" in alt)
    lines = ["## `loss:`", "",
             "One loss for every head (a name, or a mapping with options), or one per head by head name:", "",
             "```yaml", "loss: categorical_crossentropy", "loss: {type: huber, delta: 2.0}",
             "loss: {class: categorical_crossentropy, angle: {type: mse, weight: 0.5}}", "```", "",
             "Losses: " + ", ".join(f"`{n}`" for n in names) + ". Default: `categorical_crossentropy`.", ""]
    return lines + options_table("### loss options", ("loss",), _mapping_of(one) or {"properties": {}})


def layers_part(types: dict) -> list[str]:
    lines = ["## Layers", "",
             "Every layer is written `- type: {attributes}` (or `- type` when no attribute is required). Every layer "
             "also takes `name`, `inputs` and `trainable`.", ""]
    families: dict[str, list] = {}
    for name, cls in sorted(types.items()):
        if name != "input":
            families.setdefault(cls.family, []).append((name, cls))
    for family in sorted(families):
        lines.append(f"- {family}: " + ", ".join(f"[`{n}`](#{n})" for n, _ in families[family]))
    lines.append("")
    for family in sorted(families):
        lines += [f"### {family} layers", ""]
        for name, cls in families[family]:
            lines += _layer(name, cls)
    return lines


def _layer(name: str, cls) -> list[str]:
    lines = [f"#### {name}", "", f"{cls.summary} Keras: `{cls.keras_class}`."]
    if cls.aliases:
        lines[-1] += " Also written " + ", ".join(f"`{a}`" for a in cls.aliases) + "."
    if cls.primary:
        lines[-1] += f" Shorthand: `- {name}: VALUE` sets `{cls.primary}`."
    lines.append("")
    if not cls.attributes:
        return [*lines, "No attributes.", ""]
    lines += ["| attribute | type | default | description |", "|---|---|---|---|"]
    for key, attr in cls.attributes.items():
        default = "required" if attr.required else f"`{_scalar(attr.default)}`" if attr.default is not None else "—"
        lines.append(f"| `{key}` | {_cell(attr.expects())} | {_cell(default)} | {_cell(attr.doc)} |")
    return [*lines, ""]


def reference_markdown() -> str:
    """The whole reference page (what ``docs/reference.md`` must contain)."""
    from nnspec.layers.registry import all_types
    from nnspec.spec.schema import full_schema

    schema = full_schema()
    props = schema["properties"]
    lines = ["# nnspec reference", "",
             f"Generated from the JSON Schema and the layer catalog by `{GENERATED_BY}`; do not edit by hand.", "",
             "Contents: [sections](#sections) · [`train:`](#train) · [`data:`](#data) · [`loss:`](#loss) · "
             "[layers](#layers)", ""]
    lines += sections_part(schema)
    lines += options_table("## `train:`", ("train",), props["train"], props["train"]["description"])
    lines += options_table("## `data:`", ("data",), props["data"], props["data"]["description"])
    lines += loss_part(schema)
    lines += layers_part(all_types(include_plugins=False))
    return "\n".join(lines).rstrip() + "\n"


def all_examples() -> list[tuple[tuple, dict]]:
    """Every example the reference shows for `train:`, `data:` and `loss:`, as (spec path, the mapping there)."""
    from nnspec.spec.schema import full_schema

    schema = full_schema()
    found: list[tuple[tuple, dict]] = []

    def walk(path: tuple, mapping: dict) -> None:
        for key, sub in mapping["properties"].items():
            found.append((path, option_example(path, key, mapping)))
            inner = _mapping_of(sub)
            if inner:
                walk((*path, key), inner)

    walk(("train",), schema["properties"]["train"])
    walk(("data",), schema["properties"]["data"])
    walk(("loss",), _mapping_of(schema["$defs"]["loss"]) or {"properties": {}})
    return found
