"""`nnspec render`: the DOT structure of every spec, real graphviz renders, and the missing-`dot` path."""

from __future__ import annotations

import html
import io
import os
import pathlib
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import nnspec
from nnspec.api import load
from nnspec.cli.main import main
from nnspec.layers.base import format_shape
from nnspec.report import diagram

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "render"
ALL_SPECS = sorted(
    [*(ROOT / "specs").glob("*.yaml"), *(ROOT / "examples").glob("*.yaml"), *DATA.glob("*.yaml")]
)
VGG = ROOT / "specs" / "fashion_mnist_vgg.yaml"
RESNET = DATA / "resnet_small.yaml"
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="graphviz's dot is not installed (CI installs it)")

NODE_RE = re.compile(r'^\s*"((?:[^"\\]|\\.)*)" \[label=<(.*)>(?:, (.*))?\];$')
EDGE_RE = re.compile(r'^\s*"((?:[^"\\]|\\.)*)" -> "((?:[^"\\]|\\.)*)" \[label=" (.*?) "(.*)\];$')
CLUSTER_LABEL_RE = re.compile(r"^\s*graph \[label=<(.*?)>, style=")


def parse(dot_text: str):
    """Node ids -> (label, attrs), edges as (src, dst, label, rest), cluster labels (lines joined by ' · ')."""
    nodes, edges, clusters = {}, [], []
    for line in dot_text.splitlines():
        if m := EDGE_RE.match(line):
            edges.append((m[1], m[2], m[3], m[4]))
        elif m := NODE_RE.match(line):
            nodes[m[1]] = (m[2], m[3] or "")
        elif (m := CLUSTER_LABEL_RE.match(line)) is not None:
            lines = (html.unescape(re.sub(r"<[^>]+>", "", part)) for part in m[1].split('<BR ALIGN="LEFT"/>'))
            clusters.append(" · ".join(line for line in lines if line))
    return nodes, edges, clusters


def spec_id(path: pathlib.Path) -> str:
    return f"{path.parent.name}/{path.name}"


@pytest.fixture(scope="module")
def loaded():
    cache = {}

    def get(path):
        if path not in cache:
            cache[path] = load(path)
        return cache[path]

    return get


# --- structure of every spec --------------------------------------------------------------------
@pytest.mark.parametrize("path", ALL_SPECS, ids=spec_id)
def test_expanded_diagram_draws_every_layer_and_connection_with_its_shape(path, loaded):
    spec = loaded(path)
    graph, infos = spec.graph, spec.analysis.nodes
    nodes, edges, clusters = parse(diagram.render(spec, expand=True))

    layer_nodes = [n for n in nodes if n in graph.nodes]
    assert len(layer_nodes) == len(graph.nodes)
    loss_nodes = [n for n in nodes if n.startswith("loss:")]
    assert len(loss_nodes) == (len(graph.heads) if spec.loss else 0)
    assert "legend" in nodes

    expected = sorted((producer, node.name, format_shape(infos[producer].output_shape))
                      for node in graph.nodes.values() for producer in node.inputs)
    drawn = sorted((src, dst, label) for src, dst, label, _ in edges if not dst.startswith("loss:"))
    assert drawn == expected
    for src, dst, label, _ in edges:
        if dst.startswith("loss:"):
            head = dst.split(":", 1)[1]
            assert src == graph.heads[head]
            assert label == format_shape(infos[src].output_shape)

    sections = {n.section for n in graph.nodes.values()}
    for section in sections:
        title = section.split(".", 1)[1] if section.startswith("heads.") else section
        assert any(c == title or c.startswith(f"{title} ·") or (section == "inputs" and c in ("input", "inputs"))
                   for c in clusters), (section, clusters)
    if spec.loss:
        assert "loss" in clusters


@pytest.mark.parametrize("path", ALL_SPECS, ids=spec_id)
def test_default_diagram_accounts_for_every_layer(path, loaded):
    spec = loaded(path)
    built = diagram.build_diagram(spec)
    covered = [layer for node in built.nodes for layer in node.layers]
    assert set(covered) == set(spec.graph.nodes)
    ids = {n.id for n in built.nodes}
    for edge in built.edges:
        assert edge.src in ids and edge.dst in ids
        assert re.fullmatch(r"\(.*\)|x\d+", edge.label)
    nodes, edges, _ = parse(diagram.to_dot(built))
    assert len(nodes) == len(built.nodes) and len(edges) == len(built.edges)


@pytest.mark.parametrize("path", ALL_SPECS, ids=spec_id)
def test_blocks_level_draws_one_box_per_section(path, loaded):
    spec = loaded(path)
    graph = spec.graph
    nodes, edges, _ = parse(diagram.render(spec, level="blocks"))
    sections = {n.section for n in graph.nodes.values() if not n.is_input}
    boxes = {n for n in nodes if n in sections}
    assert boxes == sections
    for name in graph.inputs:
        assert name in nodes
    for section in sections:
        names = [n.name for n in graph.nodes.values() if n.section == section]
        params = sum(spec.analysis.nodes[n].param_count for n in names)
        label = nodes[section][0]
        assert f"{len(names)} layer" in label
        assert (f"{params:,} param" in label) or (params == 0 and "no params" in label)
        assert '">in (' in label and '">out (' in label
    # every box is connected and every connection carries a shape
    connected = {e[0] for e in edges} | {e[1] for e in edges}
    assert set(graph.inputs) | sections <= connected
    assert all(re.fullmatch(r"\(.*\)", e[2]) for e in edges)


@needs_dot
@pytest.mark.parametrize("path", ALL_SPECS, ids=spec_id)
def test_graphviz_accepts_the_dot_text(path, loaded):
    spec = loaded(path)
    for options in ({}, {"level": "blocks"}):
        done = subprocess.run(["dot", "-Tcanon"], input=diagram.render(spec, **options).encode(), capture_output=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr.decode()
        assert not done.stderr.strip(), done.stderr.decode()  # no warnings either


# --- repeated blocks, branches, heads, frozen layers ------------------------------------------------
def test_repeated_block_is_drawn_once_and_marked_x3(loaded):
    spec = loaded(RESNET)
    nodes, edges, clusters = parse(diagram.render(spec))
    assert any(c.startswith("residual x3 ·") for c in clusters)
    assert any(c.startswith("residual x2 ·") for c in clusters)
    back_edges = [e for e in edges if e[2] in ("x3", "x2")]
    assert sorted(e[2] for e in back_edges) == ["x2", "x3"]
    assert all('style="dashed"' in e[3] and 'constraint="false"' in e[3] for e in back_edges)
    # 31 nodes; the 3-fold use draws 5 of 15, the 2-fold use 5 of 10
    assert len([n for n in nodes if n in spec.graph.nodes]) == 31 - 10 - 5
    # the skip connection into each drawn add is there
    assert ("conv2d", "add", "(None, 28, 28, 16)") in [e[:3] for e in edges]
    assert ("conv2d_7", "add_3", "(None, 14, 14, 32)") in [e[:3] for e in edges]


def test_expand_draws_every_repetition(loaded):
    spec = loaded(RESNET)
    nodes, edges, clusters = parse(diagram.render(spec, expand=True))
    assert len([n for n in nodes if n in spec.graph.nodes]) == 31
    assert not [e for e in edges if e[2].startswith("x")]
    assert any(c.startswith("residual (3 of 3) ·") for c in clusters)
    assert not any(" x3 " in c for c in clusters)


def test_vgg_nodes_show_key_attributes_shapes_and_parameters(loaded):
    spec = loaded(VGG)
    nodes, _, clusters = parse(diagram.render(spec))
    assert "8 × 3×3, same" in nodes["conv2d"][0]
    assert "(None, 28, 28, 8) · 80 params" in nodes["conv2d"][0]
    assert "pool 2×2" in nodes["max_pooling2d"][0]
    assert "256 units, relu" in nodes["dense"][0]
    assert "rate 0.5" in nodes["dropout"][0]
    assert "32 params (16 non-trainable)" in nodes["batch_normalization"][0]
    assert sum(c.startswith("conv_pair ·") for c in clusters) == 3
    assert "categorical_crossentropy" in nodes["loss:output"][0]


def test_parameter_heavy_layers_are_darker_and_thicker(loaded):
    spec = loaded(VGG)
    built = diagram.build_diagram(spec)
    by_id = {n.id: n for n in built.nodes}
    heavy, light, free = by_id["dense"], by_id["conv2d"], by_id["flatten"]
    assert heavy.attrs["fillcolor"] == diagram.TRAINABLE_FILLS[-1]
    assert float(heavy.attrs["penwidth"]) > float(light.attrs["penwidth"]) + 2
    assert free.attrs["fillcolor"] == "#ffffff"
    assert light.attrs["fillcolor"] not in (heavy.attrs["fillcolor"], free.attrs["fillcolor"])


def test_frozen_layers_are_grey_dashed_and_labelled(loaded):
    spec = loaded(DATA / "frozen.yaml")
    built = diagram.build_diagram(spec)
    by_id = {n.id: n for n in built.nodes}
    for name in ("conv2d", "batch_normalization", "conv2d_1"):
        assert by_id[name].attrs["fillcolor"] in diagram.FROZEN_FILLS
        assert "dashed" in by_id[name].attrs["style"]
        assert "frozen" in by_id[name].label
    for name in ("dense", "dense_1"):
        assert by_id[name].attrs["fillcolor"] in diagram.TRAINABLE_FILLS
        assert "dashed" not in by_id[name].attrs["style"]
    assert "frozen (dashed)" in by_id["legend"].label


def test_two_inputs_merge_into_one_layer(loaded):
    spec = loaded(DATA / "two_inputs.yaml")
    nodes, edges, clusters = parse(diagram.render(spec))
    assert "inputs" in clusters
    assert {"image", "meta"} <= set(nodes)
    assert '{rank=same; "image"; "meta";}' in diagram.render(spec, rankdir="LR")  # inputs side by side
    into_concat = sorted((e[0], e[2]) for e in edges if e[1] == "concatenate")
    assert into_concat == [("image_features", "(None, 1352)"), ("meta_features", "(None, 16)")]


def test_two_heads_get_their_own_clusters_outputs_and_losses(loaded):
    spec = loaded(DATA / "two_heads.yaml")
    nodes, edges, clusters = parse(diagram.render(spec))
    assert "heads" in clusters
    assert any(c.startswith("class ·") for c in clusters) and any(c.startswith("angle ·") for c in clusters)
    for head, loss, shape in (("class", "categorical_crossentropy", "(None, 10)"), ("angle", "mse", "(None, 1)")):
        assert loss in nodes[f"loss:{head}"][0]
        assert (head, f"loss:{head}", shape) in [e[:3] for e in edges]
        assert 'peripheries="2"' in nodes[head][1]
    # the encoder's last layer feeds both heads
    assert len([e for e in edges if e[0] == "flatten"]) == 2


def test_autoencoder_has_encoder_and_decoder_clusters(loaded):
    spec = loaded(DATA / "autoencoder.yaml")
    _, _, clusters = parse(diagram.render(spec))
    assert any(c.startswith("encoder · 4 layers") for c in clusters)
    assert any(c.startswith("decoder · 3 layers") for c in clusters)
    nodes, _, _ = parse(diagram.render(spec, level="blocks"))
    assert "out (None, 28, 28, 1)" in nodes["decoder"][0]


def test_large_spec_folds_long_chains_and_stays_small(loaded):
    spec = loaded(DATA / "deep_300.yaml")
    assert len(spec.graph.nodes) > 300
    built = diagram.build_diagram(spec)
    folds = [n for n in built.nodes if n.kind == "fold"]
    assert len(folds) == 24 and all(len(n.layers) == 12 for n in folds)
    assert len(built.nodes) < diagram.DEFAULT_MAX_NODES
    assert "12 layers" in folds[0].label and "dense x4, batch_norm x4, activation x4" in folds[0].label
    nodes, _, _ = parse(diagram.render(spec, expand=True))
    assert len([n for n in nodes if n in spec.graph.nodes]) == len(spec.graph.nodes)
    # small specs are never folded
    assert not [n for n in diagram.build_diagram(loaded(VGG)).nodes if n.kind == "fold"]


def test_rankdir_and_bad_options():
    spec = load(VGG)
    assert 'rankdir="LR"' in diagram.render(spec, rankdir="LR")
    assert 'rankdir="TB"' in diagram.render(spec)
    with pytest.raises(diagram.DiagramError, match="rankdir"):
        diagram.render(spec, rankdir="BT")
    with pytest.raises(diagram.DiagramError, match="level"):
        diagram.render(spec, level="neurons")


@pytest.mark.parametrize(
    ("layer_type", "attrs", "expected"),
    [
        ("conv2d", {"filters": 32, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu"},
         "32 × 3×3, stride 2, same, relu"),
        ("conv2d", {"filters": 8, "kernel_size": [3, 5], "strides": 1, "padding": "valid", "activation": "linear"},
         "8 × 3×5"),
        ("conv1d", {"filters": 4, "kernel_size": 5, "strides": 1, "padding": "valid", "activation": "linear"},
         "4 × 5"),
        ("max_pool2d", {"pool_size": 2, "strides": None, "padding": "valid"}, "pool 2×2"),
        ("dense", {"units": 10, "activation": "softmax"}, "10 units, softmax"),
        ("dropout", {"rate": 0.25}, "rate 0.25"),
        ("activation", {"activation": "relu"}, "relu"),
        ("flatten", {}, ""),
    ],
)
def test_key_attributes_are_short(layer_type, attrs, expected):
    assert diagram.key_attributes(layer_type, attrs) == expected


# --- the Python API and the CLI ------------------------------------------------------------------
def test_api_returns_dot_and_writes_when_output_given(tmp_path):
    text = nnspec.render(str(VGG))
    assert text.startswith('digraph "fashion_mnist_vgg_model" {')
    out = tmp_path / "vgg.dot"
    assert nnspec.render(str(VGG), str(out), level="blocks") == out.read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(["render", *map(str, argv)], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@needs_dot
def test_cli_renders_svg_and_png(tmp_path):
    from PIL import Image

    svg, png = tmp_path / "vgg.svg", tmp_path / "resnet.png"
    code, out, err = run_cli(VGG, "-o", svg)
    assert code == 0, err
    assert f"wrote {svg}" in out
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    text = svg.read_text()
    assert "conv2d_5" in text and "(None, 7, 7, 32)" in text

    code, out, err = run_cli(RESNET, "-o", png, "--rankdir", "LR")
    assert code == 0, err
    with Image.open(png) as image:
        image.verify()
    with Image.open(png) as image:
        width, height = image.size
        assert image.format == "PNG"
    assert 400 < width < 20000 and 200 < height < 20000
    assert width > height  # left to right
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


@needs_dot
def test_cli_renders_pdf_of_blocks_level(tmp_path):
    pdf = tmp_path / "vgg.pdf"
    code, _, err = run_cli(VGG, "-o", pdf, "--level", "blocks")
    assert code == 0, err
    assert pdf.read_bytes().startswith(b"%PDF")


def test_missing_dot_names_the_install_command_and_still_writes_dot(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "")
    png = tmp_path / "vgg.png"
    code, out, err = run_cli(VGG, "-o", png)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "apt-get install graphviz" in lines[0] and "brew install graphviz" in lines[0]
    assert str(tmp_path / "vgg.dot") in lines[0]
    assert not png.exists()
    assert (tmp_path / "vgg.dot").read_text() == nnspec.render(str(VGG))
    with pytest.raises(diagram.GraphvizMissing):
        nnspec.render(str(VGG), str(tmp_path / "again.svg"))
    assert (tmp_path / "again.dot").exists()


def test_dot_output_needs_no_graphviz(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "")
    target = tmp_path / "sub" / "resnet.dot"
    code, _, err = run_cli(RESNET, "-o", target, "--expand")
    assert code == 0, err
    assert target.read_text() == nnspec.render(str(RESNET), expand=True)


def test_cli_without_output_prints_dot_and_rejects_unknown_formats(tmp_path):
    code, out, _ = run_cli(VGG, "--level", "blocks")
    assert code == 0 and out.startswith("digraph")
    code, _, err = run_cli(VGG, "-o", tmp_path / "vgg.jpeg")
    assert code == 1 and ".svg, .png, .pdf or .dot" in err
    code, _, err = run_cli(tmp_path / "missing.yaml", "-o", tmp_path / "x.svg")
    assert code == 1 and "missing.yaml" in err


def test_rendering_imports_no_framework(tmp_path):
    script = (
        "import sys, nnspec\n"
        f"nnspec.render({str(RESNET)!r}, {str(tmp_path / 'r.dot')!r})\n"
        f"nnspec.render({str(VGG)!r}, level='blocks')\n"
        "from nnspec.cli.main import main\n"
        f"assert main(['render', {str(VGG)!r}, '-o', {str(tmp_path / 'v.dot')!r}]) == 0\n"
        "heavy = [m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
