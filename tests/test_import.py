"""`nnspec import`: a Keras model back to a spec with the same summary and, with the copied weights,
the same outputs; every shipped spec goes spec -> Keras -> import -> spec."""

from __future__ import annotations

import io
import pathlib

import numpy as np
import pytest

import nnspec
from nnspec.api import import_keras

pytestmark = pytest.mark.keras

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "examples").glob("*.yaml"))
APPLICATIONS = sorted((ROOT / "examples" / "applications").glob("*.yaml"))


def _rows(spec) -> list[tuple]:
    from nnspec.layers import registry

    def shape(s):  # Keras keeps no names for variable dimensions: `seq` comes back as None
        return tuple(d if isinstance(d, int) else None for d in s)

    # the same layers, shapes, counts and connections (the order of independent branches may differ)
    return sorted((name, registry.get(spec.graph.nodes[name].type).keras_class, shape(info.output_shape),
                   info.param_count, info.trainable_count, tuple(spec.graph.nodes[name].inputs))
                  for name, info in spec.analysis.nodes.items())


def _outputs(model, inputs) -> list[np.ndarray]:
    import keras

    out = model(inputs if len(inputs) > 1 else inputs[0], training=False)
    values = out.values() if isinstance(out, dict) else [out]
    return [keras.ops.convert_to_numpy(v) for v in values]


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_every_spec_round_trips_through_keras(path):
    from nnspec.backends import keras as kb
    from nnspec.backends.export import example_inputs

    spec = nnspec.load(path)
    model = kb.build(spec, seed=3)
    imported, again, weights = import_keras(model)
    assert _rows(again) == _rows(spec)
    assert again.total_params == spec.total_params and again.trainable_params == spec.trainable_params
    rebuilt = kb.build(again, seed=0)
    kb.set_weights(rebuilt, again, weights)
    inputs = example_inputs(spec, {d: 5 for d in ("seq", "time", "tokens")}, batch=2)
    for want, got in zip(_outputs(model, inputs), _outputs(rebuilt, inputs), strict=True):
        assert np.max(np.abs(want - got)) == 0.0
    assert nnspec.load("again.yaml", text=imported.text).total_params == spec.total_params


@pytest.mark.slow
@pytest.mark.parametrize("path", APPLICATIONS, ids=[p.name for p in APPLICATIONS])
def test_every_application_round_trips_through_keras(path):
    """The keras.applications specs: spec -> Keras model -> import -> a spec with the same layers,
    counts and outputs; the import writes their repeated blocks once, so it stays short."""
    from nnspec.backends import keras as kb

    spec = nnspec.load(path)
    model = kb.build(spec, seed=3)
    imported, again, weights = import_keras(model)
    assert _rows(again) == _rows(spec)
    assert again.total_params == spec.total_params and again.trainable_params == spec.trainable_params
    flat, _, _ = import_keras(model, blocks=False)
    print(f"{path.name}: imported {len(imported.text.splitlines())} lines (flat {len(flat.text.splitlines())})")
    assert len(imported.text.splitlines()) <= len(flat.text.splitlines())
    rebuilt = kb.build(again, seed=0)
    kb.set_weights(rebuilt, again, weights)
    shape = tuple(d or 64 for d in spec.analysis.nodes[spec.graph.inputs[0]].output_shape[1:])
    x = np.random.default_rng(0).uniform(0, 255, (1, *shape)).astype(np.float32)
    want, got = _outputs(model, [x]), _outputs(rebuilt, [x])
    assert np.max(np.abs(want[0] - got[0])) == 0.0


def test_repeated_blocks_are_imported_as_blocks():
    """ResNet50: each stage's identical bottlenecks become one use of one shared block (filters as a
    parameter, the last convolution's 4x written as such); the spec is less than half the flat one and
    builds the same graph."""
    from nnspec.backends.keras.importer import open_model
    from nnspec.spec.fold import same_graph

    model = open_model("keras.applications.ResNet50")
    folded, spec, _ = import_keras(model)
    flat, flat_spec, _ = import_keras(model, blocks=False)
    assert same_graph(flat_spec.graph, spec.graph) is None
    assert 2 * len(folded.text.splitlines()) < len(flat.text.splitlines())
    text = folded.text
    assert "params: {filters: 64}" in text
    assert "- conv2d: {name: 3_conv, filters: '${4 * filters}', kernel_size: 1}" in text
    for stage, repeat, filters in [(2, 2, None), (3, 3, 128), (4, 5, 256), (5, 2, 512)]:
        use = f"- block: {{use: block, repeat: {repeat}, prefix: 'conv{stage}_block${{repeat_index + 2}}_'"
        assert use + (f", with: {{filters: {filters}}}}}" if filters else "}") in text
    assert spec.total_params == model.count_params()
    # values as a person writes them: the last axis is the default, symmetric padding one number
    assert "axis" not in text and "- zero_padding2d: {name: conv1_pad, padding: 3}" in text


def test_initializers_with_settings_come_back_as_keras_wrote_them():
    """EfficientNetB0's convolutions draw from VarianceScaling(2.0, fan_out), its head from
    VarianceScaling(1/3, fan_out, uniform): the spec says so, and its Keras build has the same configs."""
    import keras

    from nnspec.backends import keras as kb
    from nnspec.backends.keras.importer import open_model

    model = open_model("keras.applications.EfficientNetB0")
    imported, spec, _ = import_keras(model)
    assert imported.notes == []
    assert "kernel_initializer: {variance_scaling: {scale: 2.0, mode: fan_out}}" in imported.text
    rebuilt = kb.build(spec)

    def config(layer, key):
        return keras.initializers.serialize(getattr(layer, key))["config"]

    for name, key in [("stem_conv", "kernel_initializer"), ("block2a_dwconv", "depthwise_initializer"),
                      ("predictions", "kernel_initializer"), ("predictions", "bias_initializer")]:
        assert config(rebuilt.get_layer(name), key) == config(model.get_layer(name), key)


def test_the_cli_writes_a_checkable_spec_and_its_weights(tmp_path):
    import keras

    from nnspec.backends.weights import read_weights
    from nnspec.cli.main import main

    inputs = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="stem")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax", kernel_regularizer=keras.regularizers.L2(0.01))(x)
    model = keras.Model(inputs, outputs, name="tiny")
    model.save(tmp_path / "tiny.keras")
    out, err = io.StringIO(), io.StringIO()
    code = main(["import", str(tmp_path / "tiny.keras"), "-o", str(tmp_path / "tiny.yaml"),
                 "--weights", str(tmp_path / "tiny.safetensors")], out, err)
    assert code == 0, err.getvalue()
    text = (tmp_path / "tiny.yaml").read_text()
    assert "conv2d: {name: stem, filters: 4, kernel_size: 3, padding: same, activation: relu}" in text
    assert "kernel_regularizer: {l2: 0.01}" in text
    spec = nnspec.load(tmp_path / "tiny.yaml")
    assert spec.total_params == model.count_params()
    weights = read_weights(tmp_path / "tiny.safetensors")
    assert np.array_equal(weights["stem/kernel"], model.get_layer("stem").kernel.numpy())
    assert main(["check", str(tmp_path / "tiny.yaml")], io.StringIO(), io.StringIO()) == 0


def test_lambda_and_custom_layers_are_refused_with_the_reason():
    import keras

    from nnspec.backends.keras.importer import ImportRefused, import_model

    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda t: t * 2, name="double")(inputs)
    with pytest.raises(ImportRefused, match="`double` is a Lambda layer: a spec holds no code"):
        import_model(keras.Model(inputs, outputs))

    class Scale(keras.layers.Layer):
        def call(self, x):
            return x * 3

    with pytest.raises(ImportRefused, match="is a Scale, which the nnspec catalog does not have"):
        import_model(keras.Model(inputs, Scale(name="s")(inputs)))


def test_a_keras_application_imports_with_its_exact_counts():
    import keras

    from nnspec.backends.keras.importer import open_model

    model = open_model("keras.applications.MobileNetV3Small")
    imported, spec, weights = import_keras(model)
    assert spec.total_params == model.count_params()
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert spec.trainable_params == trainable
    assert len(weights) == len(model.weights)
    # the spec, built by nnspec on either backend with the imported weights, computes what Keras does
    from nnspec.backends import keras as kb
    from nnspec.backends import torch as tb

    x = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    want = keras.ops.convert_to_numpy(model(x, training=False))
    rebuilt = kb.build(spec, seed=0)
    kb.set_weights(rebuilt, spec, weights)
    assert np.max(np.abs(keras.ops.convert_to_numpy(rebuilt(x, training=False)) - want)) < 1e-5
    import torch

    module = tb.build(spec, seed=0).eval()
    tb.set_weights(module, spec, weights)
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(got - want)) < 1e-5
