"""Folding repeated runs of layers into blocks (what `nnspec import` writes): the folded spec expands to
exactly the flat spec's graph -- every name, type, input and attribute -- and reads like a hand-written one.
Pure Python: the flat and folded specs are both expanded by nnspec itself."""

from __future__ import annotations

from typing import Any

import yaml

import nnspec
from nnspec.spec.fold import FlatLayer, fold, layer_item, same_graph


def _spec(layers: list[FlatLayer], blocks: dict | None = None, items: list | None = None) -> nnspec.Spec:
    data: dict[str, Any] = {"name": "m", "inputs": {"x": {"shape": [8, 8, 4]}}}
    if blocks:
        data["blocks"] = blocks
    data["encoder"] = items if items is not None else [
        layer_item(layer, layers[i - 1].name if i else "x") for i, layer in enumerate(layers)]
    return nnspec.load("m.yaml", text=yaml.safe_dump(data, sort_keys=False))


def _check(layers: list[FlatLayer]):
    """Fold ``layers``; the folded spec must expand to the flat one's graph. Returns the fold."""
    folded = fold(layers, "x")
    flat, again = _spec(layers), _spec(layers, folded.blocks, folded.items)
    assert same_graph(flat.graph, again.graph) is None
    assert again.total_params == flat.total_params
    return folded


def _residual(prefix: str, filters: int = 4, rate: float | None = None) -> list[FlatLayer]:
    """conv, bn, conv, (dropout), add with the block input: a residual block with Keras-style names."""
    before = None  # the block input: whatever precedes it
    out = [FlatLayer("conv2d", {"filters": filters, "kernel_size": 3, "padding": "same"}, f"{prefix}1_conv", True, ()),
           FlatLayer("batch_norm", {}, f"{prefix}1_bn", True, (f"{prefix}1_conv",)),
           FlatLayer("conv2d", {"filters": filters, "kernel_size": 3, "padding": "same"}, f"{prefix}2_conv", True,
                     (f"{prefix}1_bn",))]
    last = f"{prefix}2_conv"
    if rate is not None:
        out.append(FlatLayer("dropout", {"rate": rate}, f"{prefix}drop", True, (last,)))
        last = f"{prefix}drop"
    out.append(FlatLayer("add", {}, f"{prefix}add", True, (before or "", last)))
    return out


def _chain(blocks: list[list[FlatLayer]], first: str = "x") -> list[FlatLayer]:
    """Wire each block's first layer and its add to the previous block's output."""
    out: list[FlatLayer] = []
    prev = first
    for block in blocks:
        entry = prev
        for layer in block:
            refs = tuple(entry if r == "" else r for r in layer.refs) if layer.refs else (prev,)
            out.append(FlatLayer(layer.kind, layer.attrs, layer.name, layer.named, refs))
            prev = layer.name
    return out


def _uses(folded) -> list[dict]:
    return [item["block"] for item in folded.items if "block" in item]


def test_a_run_of_residual_blocks_becomes_one_use_whose_prefix_counts_past_nine():
    layers = _chain([_residual(f"stage1_block{i}_") for i in range(8, 13)])
    folded = _check(layers)
    (use,) = _uses(folded)
    assert use["repeat"] == 5 and use["prefix"] == "stage1_block${repeat_index + 8}_"
    (definition,) = folded.blocks.values()
    assert [next(iter(item)) for item in definition["layers"]] == ["conv2d", "batch_norm", "conv2d", "add"]
    assert definition["layers"][0]["conv2d"]["name"] == "1_conv"
    assert definition["layers"][-1]["add"]["inputs"] == ["$input", "2_conv"]


def test_runs_with_other_numbers_share_one_definition_with_parameters():
    stage_a = [_residual(f"conv2_block{i}_", filters=8) for i in range(1, 4)]
    stage_b = [_residual(f"conv3_block{i}_", filters=16) for i in range(1, 4)]
    head = [FlatLayer("global_avg_pool2d", {}, "pool", True, ())]
    # stage b needs 16 channels at its input for the add: a 1x1 convolution between the stages
    widen = [FlatLayer("conv2d", {"filters": 16, "kernel_size": 1}, "widen", True, ())]
    folded = _check(_chain([_stem(8), *stage_a, widen, *stage_b, head]))
    uses = _uses(folded)
    assert len(folded.blocks) == 1 and len(uses) == 2
    (definition,) = folded.blocks.values()
    assert definition["params"] == {"filters": 8}
    assert uses[0].get("with") is None and uses[1]["with"] == {"filters": 16}
    assert definition["layers"][0]["conv2d"]["filters"] == "$filters"


def _stem(filters: int) -> list[FlatLayer]:
    return [FlatLayer("conv2d", {"filters": filters, "kernel_size": 1}, "stem", True, ())]


def test_a_float_that_grows_by_a_constant_step_is_written_with_repeat_index():
    rates = [0.1 * b / 8 for b in range(2, 6)]  # stochastic depth: 0.025, 0.0375, ... (with float noise)
    layers = _chain([_stem(4), *[_residual(f"block2{c}_", rate=r) for c, r in zip("bcde", rates, strict=True)]])
    folded = _check(layers)
    (use,) = _uses(folded)
    assert use["prefix"] == "block2${letter(repeat_index + 1)}_"
    (definition,) = folded.blocks.values()
    drop = next(item["dropout"] for item in definition["layers"] if "dropout" in item)
    assert drop["rate"] == "${0.025 + 0.0125 * repeat_index}"


def test_unnamed_layers_and_names_that_count_inside():
    # Keras's automatic names stay automatic; names like conv_dw_3 count inside the name
    layers: list[FlatLayer] = []
    prev = "x"
    for i in range(3, 8):
        for kind, attrs, name, named in [("depthwise_conv2d", {"kernel_size": 3, "padding": "same"}, f"conv_dw_{i}", True),
                                         ("batch_norm", {}, f"conv_dw_{i}_bn", True),
                                         ("relu", {}, "re_lu" if i == 3 else f"re_lu_{i - 3}", False)]:
            layers.append(FlatLayer(kind, attrs, name, named, (prev,)))
            prev = name
    folded = _check(layers)
    (use,) = _uses(folded)
    assert use["prefix"] == "" and use["repeat"] == 5
    (definition,) = folded.blocks.values()
    assert definition["layers"][0]["depthwise_conv2d"]["name"] == "conv_dw_${repeat_index + 3}"
    assert "name" not in (definition["layers"][2]["relu"] or {})


def test_what_does_not_repeat_stays_flat():
    names = ["stem", "mixed", "tower", "branch", "merge", "top"]
    layers = [FlatLayer("conv2d", {"filters": 4, "kernel_size": 1}, n, True, (p,))
              for n, p in zip(names, ["x", *names], strict=False)]
    folded = fold(layers, "x")
    assert not folded.blocks
    assert folded.items == [layer_item(layer, layers[i - 1].name if i else "x") for i, layer in enumerate(layers)]
    # a run that saves no line stays flat too: two 4-layer blocks (8 lines) would take 4 + 3 + 1
    short = _chain([_residual(f"block{i}_") for i in (1, 2)])
    assert len(short) == 8 and not fold(short, "x").blocks
    assert _uses(fold(_chain([_residual(f"block{i}_") for i in (1, 2, 3)]), "x"))[0]["repeat"] == 3


def test_same_graph_names_the_first_difference():
    layers = _chain([_residual(f"block{i}_") for i in range(1, 4)])
    a = _spec(layers)
    changed = [FlatLayer(layer.kind, {**layer.attrs, "filters": 5} if layer.name == "block2_1_conv" else layer.attrs,
                         layer.name, layer.named, layer.refs) for layer in layers]
    difference = same_graph(a.graph, _spec(changed).graph)
    assert difference is not None and "block2_1_conv" in difference
