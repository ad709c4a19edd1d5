"""The layer contract: everything a layer type must declare for the schema, the analysis, the
diagram and every backend, checked for every catalog type (a new type that misses one fails here).

The parity table of ``test_backend_parity.py`` gives one or more real instances of every type.
"""

from __future__ import annotations

import pytest

import nnspec
from nnspec.layers import registry
from nnspec.layers.base import LayerType, Param
from tests.test_backend_parity import CASES

TYPES = sorted(set(registry.all_types()) - {"input"})


@pytest.mark.parametrize("name", TYPES)
def test_every_type_declares_its_schema_and_rules(name):
    cls = registry.get(name)
    assert issubclass(cls, LayerType)
    assert cls.summary, f"{name}: no summary"
    assert cls.keras_class, f"{name}: no keras_class"
    for attr_name, attr in cls.attributes.items():
        assert attr.doc, f"{name}.{attr_name}: no description in the schema"
    assert cls.call_style in ("single", "list", "attention"), f"{name}: unknown call_style {cls.call_style!r}"
    if cls.max_inputs > 1 and cls.min_inputs > 1:
        assert cls.call_style != "single", f"{name} takes several inputs: declare call_style 'list' or 'attention'"
    window = {"kernel_size", "pool_size"} & set(cls.attributes)
    if window:
        assert cls.spatial_rank in (1, 2, 3), f"{name} has a window ({', '.join(window)}): declare spatial_rank"


@pytest.mark.parametrize("key, layer_type, text", CASES, ids=[c[0] for c in CASES])
def test_every_parameter_says_how_it_is_initialised_and_regularised(key, layer_type, text):
    spec = nnspec.load("case.yaml", text=text)
    for node in spec.graph.nodes.values():
        if node.is_input:
            continue
        cls = registry.get(node.type)
        for p in spec.analysis.nodes[node.name].params:
            assert isinstance(p, Param)
            assert p.initializer_for(node.attrs), f"{node.type}: parameter {p.name} declares no initializer"
            if p.initializer_attr:
                assert p.initializer_attr in cls.all_attributes(), (
                    f"{node.type}: parameter {p.name} reads missing attribute {p.initializer_attr}")
            if p.regularizer_attr:
                assert p.regularizer_attr in cls.all_attributes(), (
                    f"{node.type}: parameter {p.name} reads missing attribute {p.regularizer_attr}")


def test_an_unconventional_parameter_name_without_an_initializer_is_an_error_not_zeros():
    from nnspec.backends.common import _initializer_of

    class Node:
        type = "mine"
        attrs: dict = {}

    with pytest.raises(ValueError, match="declares parameter `alpha` without an initializer"):
        _initializer_of(Node(), Param("alpha", (3,)))
    assert _initializer_of(Node(), Param("alpha", (3,), initializer="ones")) == "ones"
    assert Param("kernel", (2, 2)).initializer_for({"kernel_initializer": "he_normal"}) == "he_normal"
