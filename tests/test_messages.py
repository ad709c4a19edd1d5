"""Messages that used to mislead (issue 11, items 5, 6 and 8): each says what happened, what was
expected and how to fix it."""

from __future__ import annotations

from conftest import ROOT

import nnspec

CNN = (ROOT / "specs" / "fashion_mnist_cnn.yaml").read_text()


def only(diagnostics):
    assert len(diagnostics) == 1, [d.format() for d in diagnostics]
    return diagnostics[0]


def test_a_misspelt_loss_name_gets_the_choices_and_did_you_mean():
    d = only(nnspec.check("s.yaml", text=CNN.replace("loss: categorical_crossentropy",
                                                       "loss: categorical_cross_entropy")))
    assert "`loss` must be one of categorical_crossentropy" in d.message and "(got 'categorical_cross_entropy')" in d.message
    assert d.hint == "did you mean `categorical_crossentropy`?"


def test_a_misspelt_loss_type_is_reported_at_the_type():
    d = only(nnspec.check("s.yaml", text=CNN.replace("loss: categorical_crossentropy",
                                                       "loss: {type: categorical_crossentopy}")))
    assert d.path == "loss.type" and "must be a mapping" not in d.message
    assert d.hint == "did you mean `categorical_crossentropy`?"


def test_a_misspelt_loss_option_is_an_unknown_key_with_did_you_mean():
    d = only(nnspec.check("s.yaml", text=CNN.replace("loss: categorical_crossentropy",
                                                       "loss: {type: categorical_crossentropy, wieght: 2}")))
    assert d.code == "unknown-key" and d.hint == "did you mean `weight`?"


def test_keras_class_names_point_to_the_spec_name():
    d = only(nnspec.check("s.yaml", text=CNN.replace("optimizer: adam", "optimizer: Adam").replace(
        "loss: categorical_crossentropy", "loss: categorical_crossentropy")))
    assert d.hint == "did you mean `adam`?"
    d = only(nnspec.check("s.yaml", text=CNN.replace("loss: categorical_crossentropy",
                                                       "loss: CategoricalCrossentropy")))
    assert d.hint == "did you mean `categorical_crossentropy`?"


def test_a_channels_first_input_is_named_in_the_hint():
    d = only(nnspec.check("s.yaml", text=CNN.replace("shape: [28, 28, 1]", "shape: [1, 28, 28]")))
    assert d.code == "shape"
    assert d.hint.startswith("input `img` has shape [1, 28, 28]: nnspec is channels-last")
    assert "write `shape: [28, 28, 1]`" in d.hint


def test_a_spec_without_inputs_gets_one_error_with_an_example():
    text = "\n".join(x for x in CNN.splitlines() if not x.startswith(("inputs:", "  img:")))
    d = only(nnspec.check("s.yaml", text=text))
    assert d.message == "the spec needs `inputs`" and "several inputs" not in d.message
    assert "inputs: {img: {shape: [28, 28, 1]}}" in d.hint


def test_several_inputs_without_a_choice_is_reported_once():
    text = CNN.replace("  img: {shape: [28, 28, 1]}", "  img: {shape: [28, 28, 1]}\n  extra: {shape: [4]}")
    d = only(nnspec.check("s.yaml", text=text))
    assert "several inputs (img, extra)" in d.message and d.hint == "e.g. `inputs: img`; the layers after it follow it"
