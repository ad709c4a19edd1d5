"""The published JSON Schema: generated from the catalog, committed, and agreeing with nnspec."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import EXAMPLES, ROOT, SPECS
from jsonschema import Draft202012Validator

from nnspec.layers import registry
from nnspec.spec.schema import full_schema

SCHEMA_FILE = ROOT / "schemas" / "nnspec.schema.json"


def test_committed_schema_is_current():
    committed = json.loads(SCHEMA_FILE.read_text())
    assert committed == full_schema(), "schemas/nnspec.schema.json is stale: run `nnspec schema -o schemas/nnspec.schema.json`"


def test_schema_is_valid_draft_2020_12():
    Draft202012Validator.check_schema(full_schema())


@pytest.mark.parametrize("path", SPECS + EXAMPLES, ids=lambda p: p.name)
def test_every_spec_and_example_validates_against_the_published_schema(path):
    errors = list(Draft202012Validator(json.loads(SCHEMA_FILE.read_text())).iter_errors(yaml.safe_load(path.read_text())))
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
