"""The spec language: scopes of block parameters, conditions, shapes inside blocks, indices
across a network, names of block outputs and name templates, YAML 1.2 numbers and the
shorthand of every layer with one main attribute (issue 12). Error messages are pinned in
tests/golden/language.yaml; these tests pin what a valid spec expands to."""

from __future__ import annotations

import pathlib

import pytest

import nnspec
from nnspec.layers import registry
from nnspec.spec.expr import ExpressionError, Tensor, evaluate, interpolate


def load(text: str):
    return nnspec.load(None, text=text)


def attrs(spec, name: str) -> dict:
    return spec.graph.nodes[name].attrs


# -- bug 1: `with:` values are the caller's ------------------------------------------------------------------


def test_with_values_are_evaluated_in_the_callers_scope():
    s = load("""
vars: {filters: 8}
inputs: {x: {shape: [8, 8, 3]}}
blocks:
  conv:
    params: {filters: 4}
    layers:
      - conv2d: {name: c, filters: $filters, kernel_size: 1}
encoder:
  - block: {use: conv, with: {filters: "${2 * filters}"}}
""")
    assert attrs(s, "conv1_c")["filters"] == 16


def test_a_stage_block_passes_its_own_parameter_through():
    s = load("""
inputs: {x: {shape: [8, 8, 3]}}
blocks:
  conv:
    params: {filters: 4, strides: 1}
    layers:
      - conv2d: {name: c, filters: $filters, kernel_size: 1, strides: $strides}
  stage:
    params: {filters: 4, strides: 2}
    layers:
      - block: {use: conv, with: {filters: $filters, strides: $strides}}
      - block: {use: conv, with: {filters: "${filters * 2}"}}
encoder:
  - block: {use: stage, with: {filters: 32}}
""")
    assert [(a["filters"], a["strides"]) for a in (attrs(s, "conv1_c"), attrs(s, "conv2_c"))] == [(32, 2), (64, 1)]


def test_parameter_defaults_may_use_earlier_parameters_and_the_input():
    s = load("""
inputs: {x: {shape: [8, 8, 6]}}
blocks:
  expand:
    params: {ratio: 4, width: "${channels(input) * ratio}"}
    layers:
      - conv2d: {name: c, filters: $width, kernel_size: 1}
encoder:
  - block: {use: expand, with: {ratio: 2}}
""")
    assert attrs(s, "expand1_c")["filters"] == 12


def test_text_templates_in_with_values_are_filled_in_in_the_callers_scope():
    # `conv${stage}_block${repeat_index + 1}_` mixes text with expressions: it is text, filled in where the
    # block is used (the caller's `stage`, this repetition's index), and the block reads the finished text
    s = load("""
vars: {stage: 2}
inputs: {x: {shape: [8, 8, 3]}}
blocks:
  conv:
    params: {tag: "", stage: 9}
    layers:
      - conv2d: {name: "${tag}conv", filters: 4, kernel_size: 1}
  stage:
    params: {stage: 3}
    layers:
      - block: {use: conv, prefix: "", repeat: 2, with: {tag: "conv${stage}_block${repeat_index + 1}_"}}
encoder:
  - block: {use: conv, prefix: "", with: {tag: "conv${stage}_${stage}x_"}}
  - block: {use: stage, prefix: ""}
""")
    assert [n for n in s.graph.nodes if n != "x"] == ["conv2_2x_conv", "conv3_block1_conv", "conv3_block2_conv"]


def test_text_templates_in_vars_and_the_model_name():
    text = """
name: "vgg${depth}"
vars: {depth: 16, first: "block${depth // 8}_conv"}
inputs: {x: {shape: [4]}}
encoder:
  - dense: {name: "${first}", units: 2}
"""
    s = load(text)
    assert (s.name, list(s.graph.nodes)) == ("vgg16", ["x", "block2_conv"])
    assert nnspec.load(None, text=text, overrides=["vars.depth=19"]).name == "vgg19"
    assert evaluate("${2 * a}", {"a": 3}) == 6  # one whole expression keeps its value's kind


# -- bug 2 and the evaluator ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("${stride == 2}", True),
        ("${stride != 2 or last}", True),
        ("${not last and stride >= 1}", False),
        ("${1 < stride <= 2}", True),
        ("${act == 'relu'}", True),
        ("${64 if stride == 2 else 32}", 64),
        ("${letter(stride)}", "c"),
        ("${ceil(stride * 1.2)}", 3),
        ("${floor(2.7)}", 2),
        ("${last or 1 / 0}", True),  # short-circuit, as Python
        ("${true and not false}", True),
    ],
)
def test_conditions_and_comparisons(text, expected):
    assert evaluate(text, {"stride": 2, "last": True, "act": "relu"}) == expected


@pytest.mark.parametrize(
    "text,message",
    [
        ("${3 * act}", "arithmetic needs numbers, but `act` is the text 'relu'"),
        ("${act + 1}", "arithmetic needs numbers"),
        ("${-act}", "needs numbers"),
        ("${act < 2}", "compare numbers"),
        ("${stride and last}", "must be true or false (got 2)"),
        ("${1 if stride else 2}", "must be true or false"),
        ("${letter(26)}", "from 0 to 25"),
        ("${max(act, 1)}", "needs numbers"),
    ],
)
def test_text_never_takes_part_in_arithmetic(text, message):
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        evaluate(text, {"stride": 2, "last": True, "act": "relu"})


def test_shapes_are_read_from_layer_outputs():
    t = Tensor("x", lambda name: (None, 8, 8, 24))
    env = {"input": t, "expansion": 6}
    assert evaluate("${input.shape[-1] * expansion}", env) == 144
    assert evaluate("${channels(input)}", env) == 24
    assert evaluate("${len(input.shape)}", env) == 4
    with pytest.raises(ExpressionError, match="out of range"):
        evaluate("${input.shape[4]}", env)
    with pytest.raises(ExpressionError, match="unknown size"):
        evaluate("${input.shape[0] * 2}", env)
    with pytest.raises(ExpressionError, match="reads a layer output"):
        evaluate("${expansion.shape}", env)


def test_name_templates_fill_in_each_part():
    assert interpolate("conv${stage}_block${i + 1}_", {"stage": 2, "i": 0}) == "conv2_block1_"
    assert interpolate("block1${letter(i)}_", {"i": 1}) == "block1b_"
    with pytest.raises(ExpressionError, match="whole number or a text"):
        interpolate("b${i / 3}", {"i": 1})


# -- bug 4: YAML 1.2 numbers ----------------------------------------------------------------------------------


def test_numbers_follow_yaml_1_2():
    from nnspec.spec.loader import load_text

    data = load_text("a: 1e-5\nb: 1E3\nc: .5\nd: yes\ne: 010\nf: 0x10\ng: 1_000\nh: -2.5e+2\ni: ~\n").data
    assert data == {"a": 1e-05, "b": 1000.0, "c": 0.5, "d": "yes", "e": 10, "f": 16, "g": "1_000", "h": -250.0,
                    "i": None}


def test_keras_epsilon_is_accepted_and_errors_keep_their_position():
    s = load("inputs: {x: {shape: [4]}}\nencoder:\n  - batch_norm: {epsilon: 1e-5}\n  - dense: 2\n")
    assert attrs(s, "batch_normalization")["epsilon"] == 1e-5
    (d,) = nnspec.check(None, text="inputs: {x: {shape: [4]}}\nencoder:\n  - dropout: {rate: 1E3}\n")
    assert (d.line, d.column) == (3, 21) and "rate" in d.message


# -- bug 5: the shorthand is a property of the layer definition -----------------------------------------------


def test_every_layer_with_one_main_attribute_takes_the_shorthand():
    types = registry.all_types(include_plugins=False)
    for name, cls in types.items():
        required = [k for k, a in cls.attributes.items() if a.required]
        if len(required) == 1 and name != "input":
            assert cls.main_attribute() == required[0], name
        if "pool" in name and not name.startswith("global"):
            assert cls.main_attribute() == "pool_size", name


@pytest.mark.parametrize("layer", ["max_pool1d: 2", "avg_pool1d: 2", "max_pooling1d: 2"])
def test_pool1d_shorthand(layer):
    s = load(f"inputs: {{x: {{shape: [10, 3]}}}}\nencoder:\n  - {layer}\n")
    assert s.analysis.nodes[list(s.graph.nodes)[-1]].output_shape == (None, 5, 3)


# -- conditions -----------------------------------------------------------------------------------------------

RESIDUAL = """
inputs: {x: {shape: [8, 8, 8]}}
blocks:
  res:
    params: {filters: 8, strides: 1}
    layers:
      - conv2d: {name: conv, filters: $filters, kernel_size: 3, strides: $strides, padding: same}
      - conv2d: {name: shortcut, inputs: $input, filters: $filters, kernel_size: 1, strides: $strides,
                 when: "${strides != 1 or channels(input) != filters}"}
      - add: {inputs: [conv, shortcut]}
encoder:
  - block: {use: res, repeat: 3, with: {filters: 16, strides: "${2 if repeat_index == 0 else 1}"}}
"""


def test_a_layer_is_included_only_when_its_condition_holds():
    s = load(RESIDUAL)
    assert "res1_shortcut" in s.graph.nodes and "res2_shortcut" not in s.graph.nodes
    # A skipped layer's name stands for its input: the identity shortcut.
    assert s.graph.nodes["add_1"].inputs == ["res2_conv", "add"]
    assert s.analysis.nodes["add_2"].output_shape == (None, 4, 4, 16)


def test_a_group_of_layers_is_included_together():
    text = """
inputs: {x: {shape: [8, 8, 4]}}
blocks:
  mb:
    params: {expansion: 1}
    layers:
      - group:
          when: "${expansion != 1}"
          name: expanded
          layers:
            - conv2d: {filters: "${channels(input) * expansion}", kernel_size: 1}
            - relu6
      - depthwise_conv2d: {inputs: expanded, kernel_size: 3, padding: same}
encoder:
  - block: {use: mb}
  - block: {use: mb, with: {expansion: 6}}
"""
    s = load(text)
    types = [n.type for n in s.graph.nodes.values()]
    assert types == ["input", "depthwise_conv2d", "conv2d", "relu6", "depthwise_conv2d"]
    assert attrs(s, "conv2d")["filters"] == 24
    assert s.graph.nodes["depthwise_conv2d_1"].inputs == ["re_lu"]


def test_a_block_use_can_be_conditional():
    text = """
vars: {deep: false}
inputs: {x: {shape: [4]}}
blocks:
  fc: {layers: [dense: 4]}
encoder:
  - block: {use: fc, when: $deep}
  - block: {use: fc, when: "${not deep}"}
"""
    assert [n.type for n in load(text).graph.nodes.values()] == ["input", "dense"]


# -- indices and names ----------------------------------------------------------------------------------------


def test_block_index_runs_over_every_use_of_a_block():
    text = """
inputs: {x: {shape: [4]}}
blocks:
  fc:
    params: {units: 4}
    layers:
      - dense: $units
      - dropout: "${0.1 * block_index}"
      - dropout: "${0.5 * block_index / block_count}"
encoder:
  - block: {use: fc, repeat: 2}
  - block: {use: fc, repeat: 3, with: {units: "${4 + repeat_index}"}}
"""
    s = load(text)
    drops = [n for n in s.graph.nodes.values() if n.type == "dropout"][::2]
    depth = [n.attrs["rate"] for n in s.graph.nodes.values() if n.type == "dropout"][1::2]
    assert [round(r, 3) for r in depth] == [0.0, 0.1, 0.2, 0.3, 0.4]  # block_count is 5
    assert [round(n.attrs["rate"], 3) for n in drops] == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert [n.block_index for n in drops] == [0, 1, 2, 3, 4] and [n.repeat for n in drops] == [0, 1, 0, 1, 2]
    assert [n.attrs["units"] for n in s.graph.nodes.values() if n.type == "dense"] == [4, 4, 4, 5, 6]


def test_block_outputs_are_named_like_layers():
    text = """
inputs: {x: {shape: [8, 8, 3]}}
blocks:
  conv_bn:
    params: {filters: 4, kernel: 1}
    layers:
      - conv2d: {filters: $filters, kernel_size: $kernel, padding: same}
      - batch_norm
encoder:
  - block: {use: conv_bn, name: branch_a}
  - block: {use: conv_bn, name: branch_b, inputs: x, with: {kernel: 3}}
  - concatenate: {inputs: [branch_a, branch_b]}
"""
    s = load(text)
    assert s.graph.nodes["concatenate"].inputs == ["batch_normalization", "batch_normalization_1"]
    assert s.analysis.nodes["concatenate"].output_shape == (None, 8, 8, 8)


def test_prefix_templates_give_keras_names():
    text = """
inputs: {x: {shape: [8, 8, 3]}}
blocks:
  mbconv:
    params: {filters: 4}
    layers:
      - conv2d: {name: expand_conv, filters: $filters, kernel_size: 1}
      - batch_norm: {name: expand_bn}
  bottleneck:
    layers:
      - conv2d: {name: 1_conv, filters: 4, kernel_size: 1}
  stage:
    params: {stage: 2, blocks: 2}
    layers:
      - block: {use: bottleneck, repeat: $blocks, prefix: "conv${stage}_block${repeat_index + 1}_"}
encoder:
  - block: {use: mbconv, repeat: 2, prefix: "block1${letter(repeat_index)}_"}
  - block: {use: stage, prefix: ""}
"""
    names = list(load(text).graph.nodes)
    assert names == ["x", "block1a_expand_conv", "block1a_expand_bn", "block1b_expand_conv", "block1b_expand_bn",
                     "conv2_block1_1_conv", "conv2_block2_1_conv"]


def test_resolve_shows_the_expanded_layers_with_their_block(tmp_path):
    import io

    import yaml

    from nnspec.cli.main import main

    path = tmp_path / "residual.yaml"
    path.write_text(RESIDUAL)
    out = io.StringIO()
    assert main(["resolve", str(path)], out, io.StringIO()) == 0
    layers = yaml.safe_load(out.getvalue())["layers"]
    first = layers[0]["conv2d"]
    assert first["name"] == "res1_conv" and first["strides"] == 2 and first["filters"] == 16
    assert first["block"] == {"use": "res", "instance": "res1", "repeat_index": 0, "block_index": 0}
    assert [next(iter(item)) for item in layers].count("conv2d") == 4


def test_deeply_nested_blocks_are_refused_with_a_located_error():
    n = 60
    blocks = "\n".join(f"  b{i}:\n    layers: [{{block: {{use: b{i + 1}}}}}]" for i in range(n))
    text = f"inputs: {{x: {{shape: [4]}}}}\nblocks:\n{blocks}\n  b{n}:\n    layers: [relu]\nencoder:\n  - block: {{use: b0}}\n"
    (d,) = nnspec.check(None, text=text)
    assert d.code == "limit" and "nest more than 32 levels" in d.message and d.line > 1


# -- model sizes: a table indexed by a var, computed input dimensions ------------------------------------------

SIZED = """
vars:
  size: 0
  width: "${[1.0, 1.1, 1.2][size]}"
  resolution: "${[224, 240, 260][size]}"
inputs: {img: {shape: [$resolution, "${resolution}", 3]}}
encoder:
  - conv2d: {name: stem, filters: "${int(32 * width)}", kernel_size: 3, strides: 2, padding: same}
  - conv2d: {name: pad, filters: 8, kernel_size: 1, padding: "${['same', 'valid'][size % 2]}"}
"""


@pytest.mark.parametrize("size,filters,resolution", [(0, 32, 224), (1, 35, 240), (2, 38, 260)])
def test_a_list_indexed_by_a_var_selects_a_model_size(size, filters, resolution):
    spec = nnspec.load(None, text=SIZED, overrides=[f"vars.size={size}"])
    assert attrs(spec, "img")["shape"] == [resolution, resolution, 3]
    assert attrs(spec, "stem")["filters"] == filters
    assert spec.analysis.nodes["stem"].output_shape == (None, resolution // 2, resolution // 2, filters)
    assert attrs(spec, "pad")["padding"] == ["same", "valid"][size % 2]


def test_lists_in_expressions():
    assert evaluate("${[[0, 1], [0, 1]]}", {}) == [[0, 1], [0, 1]]
    assert evaluate("${len([3, 4, 5]) + [3, 4, 5][-1]}", {}) == 8
    with pytest.raises(ExpressionError, match=r"index 3 is out of range for the list \[1, 2, 3\]"):
        evaluate("${[1, 2, 3][n]}", {"n": 3})
    with pytest.raises(ExpressionError, match="arithmetic needs numbers"):
        evaluate("${2 * [1, 2]}", {})
    with pytest.raises(ExpressionError, match="a list holds numbers, texts, true/false or shapes"):
        evaluate("${[input][0]}", {"input": Tensor("x", lambda name: (None, 4))})


# -- blocks with several inputs and outputs; references computed by expressions -------------------------------

CELLS = """
inputs: {x: {shape: [8, 8, 4]}}
blocks:
  cell:  # Keras's `x, p = cell(x, p)`: reads two layers, gives its result and its own first input
    inputs: [ip, p]
    outputs: [$prev, ip]
    params: {filters: 6}
    layers:
      - conv2d: {name: adjust, filters: $filters, kernel_size: 1, inputs: p, when: "${channels(p) != filters}"}
      - conv2d: {name: h, filters: $filters, kernel_size: 1, inputs: ip}
      - add: {name: out, inputs: [h, adjust]}
encoder:
  - conv2d: {name: stem, filters: 4, kernel_size: 1}
  - block: {use: cell, prefix: "c${block_index}_", repeat: 3, inputs: [$prev, x], name: [last, p3]}
  - concatenate: {name: joined, inputs: [last, p3]}
"""


def test_a_repeated_block_with_two_inputs_feeds_its_outputs_to_the_next_repetition():
    s = load(CELLS)
    nodes = s.graph.nodes
    # repetition 0 reads (stem, x); repetition 1 reads (c0_out, stem); repetition 2 (c1_out, c0_out)
    assert nodes["c0_h"].inputs == ["stem"] and nodes["c0_adjust"].inputs == ["x"]
    assert nodes["c1_h"].inputs == ["c0_out"] and nodes["c1_adjust"].inputs == ["stem"]
    assert nodes["c2_h"].inputs == ["c1_out"]
    # `channels(p)` reads the second input's shape: c2's p (c0_out) has 6 channels already, so no adjustment
    assert "c2_adjust" not in nodes and nodes["c2_out"].inputs == ["c2_h", "c0_out"]
    # `name: [last, p3]` names both outputs of the last repetition
    assert nodes["joined"].inputs == ["c2_out", "c1_out"]
    assert s.analysis.nodes["joined"].output_shape == (None, 8, 8, 12)


def test_references_in_inputs_may_be_computed():
    s = load("""
vars: {wide: false, stage: 2}
inputs: {x: {shape: [8, 8, 3]}}
encoder:
  - conv2d: {name: conv_2, filters: 4, kernel_size: 1}
  - conv2d: {name: narrow, filters: 4, kernel_size: 1, inputs: x}
  - conv2d: {name: broad, filters: 8, kernel_size: 1, inputs: x}
  - add: {name: sum, inputs: ["conv_${stage}", "${'broad' if wide else 'narrow'}"]}
  - concatenate: {inputs: [sum, broad]}
""")
    assert s.graph.nodes["sum"].inputs == ["conv_2", "narrow"]


def test_block_input_and_output_mistakes_are_located():
    bad = CELLS.replace("inputs: [$prev, x], name: [last, p3]", "inputs: [$prev], name: [last, p3]")
    with pytest.raises(nnspec.SpecError) as err:
        load(bad)
    assert "block `cell` reads 2 inputs (ip, p), got ['$prev']" in str(err.value)
    bad = CELLS.replace("outputs: [$prev, ip]", "outputs: [$prev]")
    with pytest.raises(nnspec.SpecError) as err:
        load(bad)
    assert "block `cell` reads 2 input(s) but gives 1 output(s)" in str(err.value)
    bad = CELLS.replace("outputs: [$prev, ip]", "outputs: [$prev, nope]")
    with pytest.raises(nnspec.SpecError) as err:
        load(bad)
    assert "block `cell` gives `nope`, which is not one of its layers or inputs" in str(err.value)
    bad = CELLS.replace("params: {filters: 6}", "params: {filters: 6, p: 1}")
    with pytest.raises(nnspec.SpecError) as err:
        load(bad)
    assert "input name `p` is also a parameter of block `cell`" in str(err.value)


def test_a_skipped_block_use_passes_its_inputs_through_to_its_names():
    s = load(CELLS.replace("repeat: 3, inputs: [$prev, x]", "when: false, inputs: [$prev, x]"))
    # no cell: `last` and `p3` stand for the use's inputs, stem and x
    assert s.graph.nodes["joined"].inputs == ["stem", "x"]


def test_require_refuses_a_var_the_family_does_not_have_and_names_its_value():
    """A family spec's size var (ResNet's depth) takes only the sizes it has; `--set vars.depth=34` was built
    silently as the largest structure under the name resnet34 before `require:`."""
    import nnspec
    from nnspec.errors import SpecError

    spec = pathlib.Path(__file__).resolve().parent.parent / "examples" / "applications" / "resnet50.yaml"
    assert nnspec.load(spec, overrides=["vars.depth=101"]).name == "resnet101"
    with pytest.raises(SpecError) as caught:
        nnspec.load(spec, overrides=["vars.depth=34"])
    (problem,) = caught.value.diagnostics
    assert "50, 101 or 152" in problem.message and "depth=34" in problem.message and problem.line > 0


def test_in_and_not_in_look_in_lists_only():
    from nnspec.spec.expr import ExpressionError, evaluate

    assert evaluate("${x in [1, 2]}", {"x": 2}) is True
    assert evaluate("${x not in [1, 2]}", {"x": 2}) is False
    assert evaluate("${'relu' in ['relu', 'gelu']}", {}) is True
    with pytest.raises(ExpressionError, match="`in` looks in a list"):
        evaluate("${x in 3}", {"x": 3})
