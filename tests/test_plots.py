"""curves.png (issue 11, item 10): one panel per quantity, integer epochs, the best epoch marked;
the summary table keeps its borders with --memory."""

from __future__ import annotations

import pytest

from nnspec.training.plots import curve_panels

TWO_HEADS = [
    {"epoch": 1, "loss": 420.0, "label_loss": 0.9, "angle_loss": 410.0, "label_accuracy": 0.71, "angle_mae": 21.0,
     "val_loss": 400.0, "val_label_loss": 0.8, "val_angle_loss": 390.0, "val_label_accuracy": 0.74,
     "val_angle_mae": 20.2, "lr": 0.001, "seconds": 3.1},
]


def test_each_quantity_gets_its_own_panel_with_train_and_validation():
    panels = curve_panels(TWO_HEADS, best_epoch=1, monitor="val_label_accuracy")
    assert [p.quantity for p in panels] == ["loss", "label_loss", "angle_loss", "label_accuracy", "angle_mae"]
    accuracy = panels[3]
    assert accuracy.series == {"train": [0.71], "validation": [0.74]}
    assert accuracy.best == (1, 0.74)
    assert all(p.best is None for p in panels if p is not accuracy)


def test_one_epoch_curves_have_one_integer_tick_and_a_best_marker(tmp_path):
    pytest.importorskip("matplotlib")
    from nnspec.training.plots import curves

    fig = curves(TWO_HEADS, str(tmp_path / "curves.png"), "two heads", best_epoch=1, monitor="val_loss")
    assert (tmp_path / "curves.png").stat().st_size > 1000
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 5
    for ax in visible:
        assert list(ax.get_xticks()) == [1]
    loss = visible[0]
    assert any(line.get_label() == "best (epoch 1)" for line in loss.get_lines())


def test_summary_memory_table_keeps_its_borders():
    # Issue 11, item 10: the Activations header was wider than its column and broke the table.
    from conftest import ROOT

    from nnspec.pipeline import load
    from nnspec.report.summary import format_table, summarize

    for width in (60, 80, 120):
        table = format_table(summarize(load(ROOT / "specs" / "fashion_mnist_cnn.yaml")), macs=True, memory=True,
                             width=width).splitlines()
        box = [line for line in table[1:] if line[:1] in "┏┃┡│├└"]
        assert len({len(line) for line in box}) == 1, "\n".join(box[:4])
        assert "Activations" in table[2]
