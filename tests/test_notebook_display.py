"""What notebooks and the REPL show: the summary as a table (text and HTML), the diagram as SVG."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

import nnspec
from nnspec.report import summary as sm
from tests.conftest import ROOT

CNN = ROOT / "specs" / "fashion_mnist_cnn.yaml"
needs_graphviz = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz is not installed")


class _Cells(HTMLParser):
    """The text of every table cell, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        self._in_cell = tag in ("td", "th")

    def handle_endtag(self, tag):
        self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.rows[-1].append(data)


def test_summary_prints_as_the_table():
    s = nnspec.summarize(str(CNN))
    assert str(s) == repr(s) == sm.format_table(s)
    assert str(s).startswith('Model: "fashion_mnist_cnn_model"')
    assert "Total params: 25,034 (97.79 KB)" in str(s)


def test_summary_html_has_every_layer_and_the_totals():
    s = nnspec.summarize(str(CNN))
    page = s._repr_html_()
    cells = _Cells()
    cells.feed(page)
    header, *rows = cells.rows
    assert header == ["Layer (type)", "Output Shape", "Param #"]
    assert [r[0] for r in rows] == [f"{row.name} ({row.keras_class})" for row in s.rows]
    assert [int(r[2].replace(",", "")) for r in rows] == [row.params for row in s.rows]
    assert "Total params: 25,034 (97.79 KB)" in page


def test_render_returns_a_drawing_that_is_still_the_dot_text(tmp_path):
    drawing = nnspec.render(str(CNN))
    assert isinstance(drawing, str) and drawing == drawing.dot  # old code that used the DOT string keeps working
    assert type(drawing.dot) is str and drawing.dot.startswith('digraph "fashion_mnist_cnn_model"')
    assert "fashion_mnist_cnn_model" in repr(drawing) and len(repr(drawing)) < 120
    assert drawing.save(tmp_path / "cnn.dot") == str(tmp_path / "cnn.dot")
    assert (tmp_path / "cnn.dot").read_text() == drawing.dot


@needs_graphviz
def test_drawing_shows_as_svg_and_saves_pictures(tmp_path):
    drawing = nnspec.render(str(CNN))
    root = ET.fromstring(drawing._repr_svg_().encode())
    assert root.tag.endswith("svg")
    texts = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    assert "conv2d_2" in texts and "max_pooling2d_1" in texts
    drawing.save(tmp_path / "cnn.png")
    assert (tmp_path / "cnn.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_graphviz_the_notebook_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` on this PATH
    drawing = nnspec.render(str(CNN))
    root = ET.fromstring(drawing._repr_svg_())
    message = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    assert "graphviz" in message and "apt-get install graphviz" in message
    with pytest.raises(nnspec.errors.UserError, match="graphviz's `dot` program was not found"):
        drawing.svg()
