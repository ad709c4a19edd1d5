"""A Keras model -> an nnspec spec (YAML text) and its weights, in the catalog's neutral layout.

The model's own config is read (``model.get_config()``): each layer's class is looked up in the
catalog by its Keras class, its settings become the layer's attributes (only those that differ
from nnspec's defaults are written), and its inputs come from the recorded call graph. A layer
is named in the spec only when its Keras name differs from the name nnspec would give it, so the
spec reads like a hand-written one while every name still matches the Keras model (and therefore
the weights file). Layers the catalog does not know -- ``Lambda``, custom classes, nested models --
are refused with a message saying which layer and why: a spec holds no code.

Runs of repeated layers (a ResNet stage's identical blocks, a DenseNet's conv blocks) are written once as
a block used with ``repeat:`` (:mod:`nnspec.spec.fold`); the folded spec is expanded and compared with the
flat one before it is kept, so folding never changes the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from nnspec.errors import UserError
from nnspec.layers import registry
from nnspec.layers.base import LayerType
from nnspec.spec.fold import FlatLayer, flat_items, fold, layer_item


class ImportRefused(UserError):
    """The Keras model uses something a spec cannot express."""


@dataclass
class Imported:
    """What :func:`import_model` produced."""

    text: str  # the spec, YAML
    notes: list[str] = field(default_factory=list)  # what was approximated (initialisers without an nnspec name)


def _snake(name: str) -> str:
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()


def _catalog_by_keras_class() -> dict[str, type[LayerType]]:
    """Keras class name -> the catalog type that builds it (the richest one when several share a class)."""
    out: dict[str, type[LayerType]] = {}
    for name in registry.all_types():
        cls = registry.get(name)
        if not cls.keras_class or name == "input":
            continue
        have = out.get(cls.keras_class)
        if have is None or len(cls.attributes) > len(have.attributes):
            out[cls.keras_class] = cls
    return out


def _initializer(value: Any, where: str, notes: dict[str, list[str]], default: Any) -> Any:
    """A Keras initializer's config as nnspec writes it: a name (``he_normal``) when Keras's settings are
    that name's defaults, else the name with its settings (``{variance_scaling: {scale: 2.0, mode:
    fan_out}}``); one nnspec cannot write keeps ``default`` and is noted."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        cls = value.get("class_name", "")
        config = {k: v for k, v in dict(value.get("config") or {}).items() if v is not None and k != "seed"}
        name = _snake(cls)
        from nnspec.layers.base import CONFIGURED_INITIALIZERS, INITIALIZERS

        settings = CONFIGURED_INITIALIZERS.get(name, {})
        if name == "variance_scaling" and config.get("distribution") == "normal":
            config["distribution"] = "truncated_normal"  # Keras's old name for it
        if (name in INITIALIZERS or name in CONFIGURED_INITIALIZERS) and set(config) <= set(settings):
            changed = {k: v for k, v in config.items() if v != settings[k][1]}
            return name if not changed and name in INITIALIZERS else {name: changed}
        what = f"initializer {cls}({', '.join(f'{k}={v}' for k, v in config.items())}) has no nnspec name; the " \
            f"spec keeps {default} (only fresh training is affected: imported weights are exact)"
        notes.setdefault(what, []).append(where)
        return default
    return value


def _regularizer(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    config = value.get("config") or {}
    factors = {k: float(config[k]) for k in ("l1", "l2") if config.get(k)}
    return factors or None


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _compact(value: Any) -> Any:
    """``[3, 3]`` -> ``3`` where the catalog accepts one number for every axis."""
    if isinstance(value, list) and value and all(v == value[0] for v in value) and isinstance(value[0], int) \
            and not isinstance(value[0], bool):
        return value[0]
    return value


def _same(a: Any, b: Any) -> bool:
    return _compact(_plain(a)) == _compact(_plain(b))


def _attrs(cls: type[LayerType], config: dict[str, Any], where: str, notes: dict[str, list[str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, attr in cls.attributes.items():
        if key not in config:
            continue
        value = config[key]
        if attr.kind == "initializer":
            value = _initializer(value, f"{where}.{key}", notes, attr.default)
        elif attr.kind == "regularizer":
            value = _regularizer(value)
        elif attr.kind == "activation" and isinstance(value, dict):
            value = value.get("config", {}).get("name", value.get("class_name"))
        value = _plain(value)
        if attr.kind == "ints":
            value = _compact(value)
        if value is None and attr.default is None:
            continue
        if _same(value, attr.default):
            continue
        out[key] = value
    for key in ("kernel_regularizer", "bias_regularizer", "activity_regularizer"):
        if key in cls.all_attributes() and key not in cls.attributes and config.get(key):
            out[key] = _regularizer(config[key])
    if config.get("trainable") is False:
        out["trainable"] = False
    return out


def _history(arg: Any) -> list[str]:
    """Layer names of the Keras tensors in a serialized call argument (nested lists allowed)."""
    if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
        return [arg["config"]["keras_history"][0]]
    if isinstance(arg, (list, tuple)):
        return [name for item in arg for name in _history(item)]
    if isinstance(arg, dict):
        return [name for item in arg.values() for name in _history(item)]
    return []


def _layers_of(model: Any) -> tuple[list[dict], list[str], list[str]]:
    """(layer configs with 'inbound' names, input layer names, output layer names) of a model."""
    config = model.get_config()
    if "input_layers" not in config:  # Sequential: a chain
        layers = [{"class_name": item["class_name"], "config": item["config"], "name": item["config"]["name"]}
                  for item in config["layers"]]
        if not layers or layers[0]["class_name"] != "InputLayer":
            shape = tuple(model.inputs[0].shape)
            layers.insert(0, {"class_name": "InputLayer", "name": model.inputs[0].name,
                              "config": {"batch_shape": shape, "dtype": model.inputs[0].dtype}})
        for prev, item in zip(layers, layers[1:], strict=False):
            item["inbound"] = [prev["name"]]
        layers[0]["inbound"] = []
        return layers, [layers[0]["name"]], [layers[-1]["name"]]
    layers = []
    for item in config["layers"]:
        nodes = item.get("inbound_nodes") or []
        if len(nodes) > 1:
            raise ImportRefused(f"layer `{item['name']}` is called {len(nodes)} times (shared weights); "
                                "a spec gives every call its own layer")
        inbound: list[str] = []
        constants: list[tuple[int, float]] = []  # (argument position, number): `x + 3.0` in the model's code
        if nodes:
            args = nodes[0].get("args", [])
            inbound = _history(args) + _history(nodes[0].get("kwargs", {}))
            constants = [(i, float(a)) for i, a in enumerate(args)
                         if isinstance(a, (int, float)) and not isinstance(a, bool)]
        layers.append({"class_name": item["class_name"], "config": item["config"], "name": item["name"],
                       "inbound": inbound, "constants": constants})
    inputs = [entry[0] for entry in _flat_refs(config["input_layers"])]
    outputs = [entry[0] for entry in _flat_refs(config["output_layers"])]
    return layers, inputs, outputs


def _flat_refs(value: Any) -> list[list]:
    if isinstance(value, list) and value and isinstance(value[0], str):
        return [value]
    if isinstance(value, dict):
        return [ref for item in value.values() for ref in _flat_refs(item)]
    return [ref for item in value for ref in _flat_refs(item)] if isinstance(value, list) else []


def import_model(model: Any, name: str | None = None, fold_blocks: bool = True) -> Imported:
    """A built Keras model (functional or sequential) as an nnspec spec; runs of repeated layers are
    written as blocks (``fold_blocks=False``: every layer listed)."""
    catalog = _catalog_by_keras_class()
    layers, input_names, output_names = _layers_of(model)
    approximated: dict[str, list[str]] = {}  # what was approximated -> where (`layer `x`.kernel_initializer`)
    inputs: dict[str, Any] = {}
    consumers: dict[str, int] = {}
    for item in layers:
        for src in item["inbound"]:
            consumers[src] = consumers.get(src, 0) + 1
    order = [item for item in layers if item["class_name"] != "InputLayer"]
    # outputs go last (in the model's output order) so the spec's last layers are its heads
    sinks = [item for item in order if item["name"] in output_names]
    for item in sinks:
        if consumers.get(item["name"]):
            raise ImportRefused(f"output layer `{item['name']}` also feeds other layers; a spec's outputs end "
                                "their branch (add a linear activation layer as the output)")
    order = [item for item in order if item["name"] not in output_names]
    sinks.sort(key=lambda item: output_names.index(item["name"]))
    for item in layers:
        if item["class_name"] != "InputLayer":
            continue
        config = item["config"]
        shape = list(config.get("batch_shape") or config.get("batch_input_shape"))[1:]
        spec_input: dict[str, Any] = {"shape": [d if d is not None else None for d in shape]}
        dtype = config.get("dtype")
        if isinstance(dtype, dict):
            dtype = dtype.get("config", {}).get("name")
        if dtype and dtype != "float32":
            spec_input["dtype"] = dtype
        inputs[item["name"]] = spec_input

    final = order + sinks
    explicit = _explicit_names(final, catalog, set(inputs))

    def flat(item: dict) -> FlatLayer:
        cls_name = item["class_name"]
        where = f"layer `{item['name']}`"
        if cls_name == "Lambda":
            raise ImportRefused(f"{where} is a Lambda layer: a spec holds no code; write it with catalog layers, "
                                "or as a plugin layer type (see the README's custom layers)")
        if cls_name in ("Functional", "Sequential", "Model"):
            raise ImportRefused(f"{where} is a nested model; build the model flat (call its layers directly)")
        if item.get("constants"):
            return _constant_op(item, explicit)
        cls = catalog.get(cls_name)
        if cls is None:
            raise ImportRefused(f"{where} is a {cls_name}, which the nnspec catalog does not have "
                                "(custom layers need a plugin layer type)")
        config = dict(item["config"])
        if cls.name == "bidirectional" and isinstance(config.get("layer"), dict):
            inner = config["layer"]
            config["layer"] = _snake(inner["class_name"])
            config.update({k: v for k, v in inner["config"].items() if k not in ("name", "trainable", "dtype")})
        attrs = _attrs(cls, config, where, approximated)
        _simplify(cls, attrs, _input_rank(model, item["name"]))
        if "pool_size" in cls.attributes and "strides" in attrs:
            pool = attrs.get("pool_size", cls.attributes["pool_size"].default)
            if _same(attrs["strides"], pool):
                del attrs["strides"]  # Keras records strides = pool_size; nnspec's default says the same
        refs = list(item["inbound"])
        if cls.call_style == "attention":  # Keras: value defaults to the query, key to the value
            if len(refs) == 3 and refs[2] == refs[1]:
                refs = refs[:2]
            if len(refs) == 2 and refs[1] == refs[0]:
                refs = refs[:1]
        return FlatLayer(cls.name, attrs, item["name"], item["name"] in explicit, tuple(refs))

    first = input_names[0] if len(input_names) == 1 else None
    trunk = [flat(item) for item in order]
    ends = [flat(item) for item in sinks]
    notes = [_note(what, where) for what, where in approximated.items()]
    last = trunk[-1].name if trunk else first
    spec: dict[str, Any] = {"name": name or model.name, "inputs": inputs}
    flat_spec = dict(spec, encoder=flat_items(trunk, first))
    _add_ends(flat_spec, ends, last)
    text = _dump(flat_spec)
    if not fold_blocks:
        return Imported(text, notes)
    folded = fold(trunk, first)
    if not folded.blocks:
        return Imported(text, notes)
    folded_spec = dict(spec, blocks=folded.blocks, encoder=folded.items)
    _add_ends(folded_spec, ends, last)
    folded_text = _dump(folded_spec)
    from nnspec.errors import SpecError
    from nnspec.spec.expand import build_graph
    from nnspec.spec.fold import same_graph
    from nnspec.spec.loader import load_text

    try:
        difference = same_graph(build_graph(load_text(text, "flat.yaml")), build_graph(load_text(folded_text, "folded.yaml")))
    except SpecError as exc:
        difference = str(exc)
    if difference is not None:
        notes.append(f"repeated blocks were not folded (the folded spec differed: {difference}); the spec lists "
                     "every layer")
        return Imported(text, notes)
    return Imported(folded_text, notes)


def _input_rank(model: Any, name: str) -> int | None:
    """The rank (batch included) of a layer's (first) input, or None when Keras does not say."""
    try:
        tensor = model.get_layer(name).input
    except (ValueError, AttributeError):
        return None
    tensor = tensor[0] if isinstance(tensor, (list, tuple)) else tensor
    shape = getattr(tensor, "shape", None)
    return len(shape) if shape is not None else None


def _simplify(cls: type[LayerType], attrs: dict[str, Any], rank: int | None) -> None:
    """Write values the way a person would: the last axis as nnspec's default -1 (Keras records 3 for a
    4-D input), symmetric 2-D padding and cropping as one number or [rows, cols]."""
    axis = cls.attributes.get("axis")
    if axis is not None and axis.default == -1 and rank is not None and "axis" in attrs:
        value = attrs["axis"]
        if value == rank - 1 or value == [rank - 1]:
            del attrs["axis"]
    for key, attr in cls.attributes.items():
        value = attrs.get(key)
        if attr.kind != "padding2d" or not isinstance(value, list) or len(value) != 2:
            continue
        if all(isinstance(v, list) and len(v) == 2 and v[0] == v[1] for v in value):
            value = [value[0][0], value[1][0]]
        if all(isinstance(v, int) for v in value) and value[0] == value[1]:
            value = value[0]
        if value == attr.default:
            del attrs[key]
        else:
            attrs[key] = value


def _note(what: str, where: list[str]) -> str:
    """One note for every place the same thing was approximated: the first few named, the rest counted."""
    if len(where) == 1:
        return f"{where[0]}: {what}"
    shown = ", ".join(where[:3]) + (f" and {len(where) - 3} more" if len(where) > 3 else "")
    return f"{len(where)} attributes ({shown}): {what}"


def _add_ends(spec: dict[str, Any], ends: list[FlatLayer], last: str | None) -> None:
    """The output layers: the encoder's last item for one output, else one head each."""
    if len(ends) == 1:
        spec["encoder"] = [*spec["encoder"], layer_item(ends[0], last)]
    else:
        spec["heads"] = {layer.name: [layer_item(layer, last)] for layer in ends}


def _constant_op(item: dict, explicit: set[str]) -> FlatLayer:
    """``x + c``, ``x * c``, ``x - c``, ``c - x``, ``x / c`` recorded by Keras as ops on a tensor and a number:
    exactly a ``rescaling`` (x * scale + offset)."""
    kind = item["class_name"]
    (position, c), = item["constants"][:1]
    if len(item["constants"]) != 1 or len(item["inbound"]) != 1:
        raise ImportRefused(f"layer `{item['name']}` ({kind}) mixes numbers and tensors in a way a spec cannot write")
    scale, offset = {
        "Add": (1.0, c),
        "Multiply": (c, 0.0),
        "Subtract": (1.0, -c) if position == 1 else (-1.0, c),
        "TrueDivide": (1.0 / c if c else float("inf"), 0.0) if position == 1 else (None, None),
        "Divide": (1.0 / c if c else float("inf"), 0.0) if position == 1 else (None, None),
    }.get(kind, (None, None))
    if scale is None:
        raise ImportRefused(f"layer `{item['name']}` applies {kind} to a number; nnspec writes only x * a + b "
                            "with numbers (rescaling)")
    attrs: dict[str, Any] = {"scale": scale}
    if offset:
        attrs["offset"] = offset
    return FlatLayer("rescaling", attrs, item["name"], item["name"] in explicit, tuple(item["inbound"]))


def _explicit_names(items: list[dict], catalog: dict[str, type[LayerType]], inputs: set[str]) -> set[str]:
    """The layers whose Keras names nnspec's automatic naming would not give (so the spec names them).

    nnspec names an unnamed layer ``base``, ``base_1``, ... counting unnamed layers of the same base
    and skipping names used anywhere else; naming one layer can change the others' automatic names,
    so this repeats until nothing changes.
    """
    explicit: set[str] = set()
    while True:
        counters: dict[str, int] = {}
        used = set(inputs)
        more: set[str] = set()
        for item in items:
            name = item["name"]
            cls = catalog.get("Rescaling" if item.get("constants") else item["class_name"])
            if name in explicit or cls is None:
                used.add(name)
                continue
            base = cls.auto_name()
            while True:
                n = counters.get(base, 0)
                counters[base] = n + 1
                auto = base if n == 0 else f"{base}_{n}"
                if auto not in used and auto not in explicit:
                    break
            used.add(auto)
            if auto != name:
                more.add(name)
        if more <= explicit:
            return explicit
        explicit |= more


def _dump(spec: dict[str, Any]) -> str:
    """Readable YAML: one layer (or block use) per line in flow style, like the hand-written specs."""

    def layer_line(layer: dict[str, Any]) -> str:
        (kind, attrs), = layer.items()
        if attrs is None:
            return kind
        return f"{kind}: {_flow(attrs)}"

    lines = ["# yaml-language-server: $schema=https://nnspec.dev/schemas/nnspec.schema.json",
             "# Imported from a Keras model by `nnspec import`.", f"name: {_flow(spec['name'])}", "inputs:"]
    for key, value in spec["inputs"].items():
        lines.append(f"  {key}: {_flow(value)}")
    if spec.get("blocks"):
        lines.append("blocks:")
        for block, definition in spec["blocks"].items():
            lines.append(f"  {block}:")
            if definition.get("params"):
                lines.append(f"    params: {_flow(definition['params'])}")
            lines.append("    layers:")
            lines += [f"      - {layer_line(layer)}" for layer in definition["layers"]]
    lines.append("encoder:")
    lines += [f"  - {layer_line(layer)}" for layer in spec["encoder"]]
    if "heads" in spec:
        lines.append("heads:")
        for head, items in spec["heads"].items():
            lines.append(f"  {head}:")
            lines += [f"    - {layer_line(layer)}" for layer in items]
    return "\n".join(lines) + "\n"


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False).strip().removesuffix("...") \
        .strip()


def open_model(source: str) -> Any:
    """A Keras model from a ``.keras``/``.h5`` file, or ``keras.applications.NAME`` built with ``weights=None``."""
    import os

    import keras

    if source.startswith("keras.applications."):
        attr = source.rsplit(".", 1)[-1]
        factory = getattr(keras.applications, attr, None)
        if factory is None or not callable(factory):
            raise ImportRefused(f"keras.applications has no model `{attr}`")
        return factory(weights=None)
    if not os.path.exists(source):
        raise ImportRefused(f"{source}: no such file (give a .keras file or keras.applications.NAME)")
    try:
        return keras.saving.load_model(source, compile=False)
    except (ValueError, TypeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImportRefused(f"{source}: Keras could not load it ({first}); custom layers cannot be imported") from None


def import_keras(source: Any, name: str | None = None, blocks: bool = True) -> tuple[Imported, Any, dict[str, Any]]:
    """(the spec, the loaded spec object, its weights in the neutral layout) for a Keras model or source;
    ``blocks``: write runs of repeated layers as blocks."""
    from nnspec.backends import keras as kb
    from nnspec.pipeline import load

    model = open_model(source) if isinstance(source, str) else source
    imported = import_model(model, name, fold_blocks=blocks)
    spec = load(f"{imported_name(model, name)}.yaml", text=imported.text)
    return imported, spec, kb.get_weights(model, spec)


def imported_name(model: Any, name: str | None) -> str:
    return name or str(model.name)
