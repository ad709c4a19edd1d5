"""The published JSON Schema: generated from the catalog, committed, and agreeing with nnspec."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import EXAMPLES, ROOT, SPECS
from jsonschema import Draft202012Validator

from nnspec.layers import registry
from nnspec.spec.loader import load_text
from nnspec.spec.schema import full_schema

SCHEMA_FILE = ROOT / "schemas" / "nnspec.schema.json"


def test_committed_schema_is_current():
    committed = json.loads(SCHEMA_FILE.read_text())
    assert committed == full_schema(), "schemas/nnspec.schema.json is stale: run `nnspec schema -o schemas/nnspec.schema.json`"


def test_schema_is_valid_draft_2020_12():
    Draft202012Validator.check_schema(full_schema())


@pytest.mark.parametrize("path", SPECS + EXAMPLES, ids=lambda p: p.name)
def test_every_spec_and_example_validates_against_the_published_schema(path):
    # Read as nnspec reads specs (YAML 1.2: `epsilon: 1e-3` is a number), as YAML 1.2 editors do.
    document = load_text(path.read_text(), file=str(path)).data
    errors = list(Draft202012Validator(json.loads(SCHEMA_FILE.read_text())).iter_errors(document))
    assert not errors, [e.message for e in errors]


@pytest.mark.parametrize("path", SPECS + EXAMPLES, ids=lambda p: p.name)
def test_every_spec_names_the_schema_for_editors(path):
    assert path.read_text().startswith("# yaml-language-server: $schema=../schemas/nnspec.schema.json")


def test_published_schema_rejects_what_nnspec_rejects():
    schema = Draft202012Validator(full_schema())
    bad = {"inputs": {"x": {"shape": [4]}}, "encoder": [{"dense": {"units": 4, "unitz": 3}}]}
    assert list(schema.iter_errors(bad))
    bad_type = {"inputs": {"x": {"shape": [4]}}, "encoder": [{"conv3d": {}}]}
    assert list(schema.iter_errors(bad_type))


def test_every_layer_fragment_describes_every_attribute():
    for name, cls in registry.all_types().items():
        frag = cls.schema()
        assert frag["additionalProperties"] is False, name
        assert cls.summary, f"{name} has no summary"
        for key, prop in frag["properties"].items():
            assert prop.get("description"), f"{name}.{key} has no description"


def test_whole_floats_are_not_integers_for_nnspec_only():
    """JSON does not tell 1.0 from 1, so JSON Schema calls 1.0 an integer; nnspec refuses it (YAML does tell
    them apart, and a float layer size would pass check and fail in the framework). The only divergence."""
    from nnspec.spec.jsonschema_lite import Validator

    base = yaml.safe_load((ROOT / "specs" / "fashion_mnist_cnn.yaml").read_text())
    doc = {**base, "encoder": [{"conv2d": {"filters": 1.0, "kernel_size": 3}}]}
    schema = full_schema()
    assert Draft202012Validator(schema).is_valid(doc)
    assert not Validator(schema).is_valid(doc)


def _documents():
    import pathlib

    docs = [load_text(p.read_text()).data for p in SPECS + EXAMPLES]
    for p in sorted((pathlib.Path(__file__).parent / "golden").glob("*.yaml")):
        try:
            docs.append(yaml.safe_load(p.read_text()))
        except yaml.YAMLError:
            pass
    base = yaml.safe_load((ROOT / "specs" / "fashion_mnist_cnn.yaml").read_text())
    variants = [
        {"encoder": [{"conv2d": {"filters": True, "kernel_size": 3}}]},
        {"encoder": [{"dropout": 0.5}, "flatten", {"dense": 64}, {"batch_norm": None}]},
        {"encoder": [{"dense": {"units": 3, "kernel_regularizer": {"l1": 0.1, "l2": -1}}}]},
        {"encoder": [{"zero_padding2d": [[1, 2], [3]]}]},
        {"inputs": {"1x": {"shape": [3]}}},
        {"inputs": {"x": {"shape": [3, None, "seq", 0]}}},
        {"train": {"optimizer": {"type": "sgd", "lr": 0.1, "momentum": 1.5}}},
        {"train": {"early_stopping": True, "schedule": {"type": "step", "step_size": 10, "gamma": 0.1}}},
        {"loss": {"type": "huber", "delta": 0}},
        {"encoder": [{"block": {"use": "x", "repeat": "$n"}}]},
        {"encoder": [{"conv2d": {"filters": "$f", "kernel_size": "${2*k}"}}]},
        {"encoder": [{"conv2d": {"filters": "f", "kernel_size": 3}}]},
    ]
    docs += [{**base, **v} for v in variants]
    return [d for d in docs if not _has_whole_float(d)]  # the one divergence, tested above


def _has_whole_float(node) -> bool:
    if isinstance(node, float):
        return node.is_integer()
    if isinstance(node, dict):
        return any(_has_whole_float(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_whole_float(v) for v in node)
    return False


def test_nnspec_validator_agrees_with_jsonschema_on_valid_and_broken_documents():
    from nnspec.spec.jsonschema_lite import SUPPORTED, Validator

    schema = full_schema()
    reference = Draft202012Validator(schema)
    ours = Validator(schema)
    for doc in _documents():
        assert reference.is_valid(doc) == ours.is_valid(doc), doc
        # Same failing keywords (paths differ only for propertyNames, which nnspec locates at the key).
        assert sorted(e.validator for e in reference.iter_errors(doc)) == sorted(
            e.validator for e in ours.iter_errors(doc)
        ), doc

    def keywords(node):
        if isinstance(node, dict):
            for k, v in node.items():
                yield k
                if k == "$defs":
                    for sub in v.values():  # layer fragments sit in $defs/layers/$defs
                        yield from keywords(sub)
                elif k == "properties":
                    for sub in v.values():
                        yield from keywords(sub)
                elif k not in ("enum", "default", "required", "description"):
                    yield from keywords(v)
        elif isinstance(node, list):
            for item in node:
                yield from keywords(item)

    assert set(keywords(schema)) - SUPPORTED == set()
