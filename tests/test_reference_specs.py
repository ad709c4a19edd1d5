"""The reference networks of ../shared/reference/seed-networks.md (numbers read from Keras 3.15)."""

from __future__ import annotations

import pytest
from conftest import ROOT

import nnspec
from nnspec.report.summary import format_table, summarize

REFERENCE = {
    "fashion_mnist_dense": (218_058, 218_058, 0, "851.79 KB"),
    "fashion_mnist_cnn": (25_034, 25_034, 0, "97.79 KB"),
    "fashion_mnist_vgg": (437_026, 436_914, 112, "1.67 MB"),
    "rotation_regression_cnn": (24_449, 24_449, 0, "95.50 KB"),
    "fashion_mnist_cnn_ensemble": (25_034, 25_034, 0, "97.79 KB"),
}


@pytest.mark.parametrize("name", REFERENCE)
def test_reference_counts(name):
    total, trainable, frozen, size = REFERENCE[name]
    s = nnspec.summarize(str(ROOT / "specs" / f"{name}.yaml"))
    assert (s.total_params, s.trainable_params, s.non_trainable_params) == (total, trainable, frozen)
    assert f"Total params: {total:,} ({size})" in format_table(s)


def test_cnn_rows_match_the_course_listing():
    s = nnspec.summarize(str(ROOT / "specs" / "fashion_mnist_cnn.yaml"))
    rows = [(r.name, r.keras_class, r.output_shape, r.params) for r in s.rows]
    assert rows == [
        ("img", "InputLayer", (None, 28, 28, 1), 0),
        ("conv2d", "Conv2D", (None, 26, 26, 8), 80),
        ("max_pooling2d", "MaxPooling2D", (None, 13, 13, 8), 0),
        ("conv2d_1", "Conv2D", (None, 11, 11, 16), 1168),
        ("max_pooling2d_1", "MaxPooling2D", (None, 5, 5, 16), 0),
        ("conv2d_2", "Conv2D", (None, 3, 3, 32), 4640),
        ("flatten", "Flatten", (None, 288), 0),
        ("dense", "Dense", (None, 64), 18496),
        ("dense_1", "Dense", (None, 10), 650),
    ]


def test_vgg_totals_lines_exactly_as_keras_prints_them():
    s = summarize(nnspec.load(str(ROOT / "specs" / "fashion_mnist_vgg.yaml")))
    tail = format_table(s).splitlines()[-3:]
    assert tail == [
        " Total params: 437,026 (1.67 MB)",
        " Trainable params: 436,914 (1.67 MB)",
        " Non-trainable params: 112 (448.00 B)",
    ]


def test_ensemble_spec_is_marked_for_ten_members():
    spec = nnspec.load(str(ROOT / "specs" / "fashion_mnist_cnn_ensemble.yaml"))
    assert spec.train["ensemble"] == 10
