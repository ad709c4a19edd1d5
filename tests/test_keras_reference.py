"""nnspec's summaries against Keras models built by hand, layer by layer (names, classes,
output shapes, parameter counts, trainable/non-trainable totals). Keras is the truth here:
every expected number comes from the Keras model built in the test, not from nnspec."""

from __future__ import annotations

import pytest
from conftest import ROOT

import nnspec

pytestmark = pytest.mark.keras


@pytest.fixture(scope="module")
def K():
    import os

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    return keras


def cnn(K, head_units=10, head_activation="softmax", name="m"):
    L = K.layers
    inp = K.Input((28, 28, 1), name="img")
    x = L.Conv2D(8, 3, activation="relu", name="conv2d")(inp)
    x = L.MaxPooling2D(name="max_pooling2d")(x)
    x = L.Conv2D(16, 3, activation="relu", name="conv2d_1")(x)
    x = L.MaxPooling2D(name="max_pooling2d_1")(x)
    x = L.Conv2D(32, 3, activation="relu", name="conv2d_2")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(64, activation="relu", name="dense")(x)
    x = L.Dense(head_units, activation=head_activation, name="dense_1")(x)
    return K.Model(inp, x, name=name)


def dense_net(K):
    L = K.layers
    inp = K.Input((784,), name="img")
    x = L.Dense(256, activation="relu", name="dense")(inp)
    x = L.Dense(64, activation="relu", name="dense_1")(x)
    return K.Model(inp, L.Dense(10, activation="softmax", name="dense_2")(x))


def vgg(K):
    L = K.layers
    inp = K.Input((28, 28, 1), name="img")
    x, c, _b = inp, 0, 0
    for i, f in enumerate((8, 16, 32)):
        for _ in range(2):
            x = L.Conv2D(f, 3, padding="same", name="conv2d" + (f"_{c}" if c else ""))(x)
            c += 1
        x = L.BatchNormalization(name="batch_normalization" + (f"_{i}" if i else ""))(x)
        x = L.Activation("relu", name="activation" + (f"_{i}" if i else ""))(x)
        if i < 2:
            x = L.MaxPooling2D(name="max_pooling2d" + (f"_{i}" if i else ""))(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(256, activation="relu", name="dense")(x)
    x = L.Dropout(0.5, name="dropout")(x)
    x = L.Dense(64, activation="relu", name="dense_1")(x)
    return K.Model(inp, L.Dense(10, activation="softmax", name="dense_2")(x))


def autoencoder(K):
    L = K.layers
    inp = K.Input((28, 28, 1), name="img")
    x = L.Conv2D(16, 3, padding="same", activation="relu")(inp)
    x = L.MaxPooling2D(2)(x)
    x = L.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")(x)
    x = L.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu")(x)
    return K.Model(inp, L.Conv2D(1, 3, padding="same", activation="sigmoid")(x))


def resnet(K):
    L = K.layers

    def residual(x, f):
        y = L.Conv2D(f, 3, padding="same", use_bias=False)(x)
        y = L.BatchNormalization()(y)
        y = L.ReLU()(y)
        y = L.Conv2D(f, 3, padding="same", use_bias=False)(y)
        y = L.BatchNormalization()(y)
        return L.ReLU()(L.Add()([x, y]))

    inp = K.Input((28, 28, 1), name="img")
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 3, padding="same", use_bias=False)(inp)))
    for _ in range(3):
        x = residual(x, 16)
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(32, 3, strides=2, padding="same", use_bias=False)(x)))
    for _ in range(3):
        x = residual(x, 32)
    return K.Model(inp, L.Dense(10, activation="softmax")(L.GlobalAveragePooling2D()(x)))


def two_head(K):
    L = K.layers
    inp = K.Input((28, 28, 1), name="img")
    x = L.MaxPooling2D(2)(L.Conv2D(16, 3, activation="relu")(inp))
    x = L.MaxPooling2D(2)(L.Conv2D(32, 3, activation="relu")(x))
    f = L.Flatten()(x)
    label = L.Dense(10, activation="softmax", name="label")(L.Dropout(0.3)(L.Dense(64, activation="relu")(f)))
    angle = L.Dense(1, name="angle")(L.Dense(32, activation="relu")(f))
    return K.Model(inp, {"label": label, "angle": angle})


def two_input(K):
    L = K.layers
    img, meta = K.Input((28, 28, 1), name="img"), K.Input((8,), name="meta")
    x = L.Conv2D(8, 3, activation="relu")(img)
    x = L.Conv2D(16, 3, activation="relu")(L.MaxPooling2D(2)(x))
    x = L.GlobalAveragePooling2D()(x)
    m = L.Dense(16, activation="relu")(meta)
    x = L.Dense(32, activation="relu")(L.Concatenate()([x, m]))
    return K.Model([img, meta], L.Dense(10, activation="softmax")(x))


def text_lstm(K):
    L = K.layers
    inp = K.Input((None,), dtype="int64", name="tokens")
    x = L.Embedding(5000, 32)(inp)
    x = L.GRU(16)(L.LSTM(32, return_sequences=True)(x))
    return K.Model(inp, L.Dense(1, activation="sigmoid")(x))


def tiny_transformer(K):
    L = K.layers
    inp = K.Input((16, 32), name="x")
    x = inp
    for _ in range(2):
        a = L.MultiHeadAttention(num_heads=4, key_dim=8)(x, x)
        n1 = L.LayerNormalization()(L.Add()([x, a]))
        ff = L.Dense(32)(L.Dense(64, activation="gelu")(n1))
        x = L.LayerNormalization()(L.Add()([n1, ff]))
    return K.Model(inp, L.Dense(5, activation="softmax")(L.GlobalAveragePooling1D()(x)))


def inverted_residual(K):
    """MobileNetV2's inverted residual block as keras.applications writes it (names included)."""
    L = K.layers

    def bn(name):
        return L.BatchNormalization(epsilon=1e-3, momentum=0.999, name=name)

    def block(x, index, filters, stride, expansion):
        prefix = f"block_{index}_" if index else "expanded_conv_"
        channels = x.shape[-1]
        y = x
        if expansion != 1:
            y = L.Conv2D(channels * expansion, 1, use_bias=False, name=prefix + "expand")(y)
            y = L.ReLU(6.0, name=prefix + "expand_relu")(bn(prefix + "expand_BN")(y))
        y = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=prefix + "depthwise")(y)
        y = L.ReLU(6.0, name=prefix + "depthwise_relu")(bn(prefix + "depthwise_BN")(y))
        y = bn(prefix + "project_BN")(L.Conv2D(filters, 1, use_bias=False, name=prefix + "project")(y))
        if stride == 1 and channels == filters:
            y = L.Dropout(0.2 * index / 5, name=prefix + "drop")(y)
            y = L.Add(name=prefix + "add")([x, y])
        return y

    inp = K.Input((28, 28, 1), name="img")
    x = L.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="Conv1")(inp)
    x = L.ReLU(6.0, name="Conv1_relu")(bn("bn_Conv1")(x))
    for index, (filters, stride, expansion) in enumerate([(8, 1, 1), (16, 2, 6), (16, 1, 6), (24, 2, 6), (24, 1, 6)]):
        x = block(x, index, filters, stride, expansion)
    x = L.Conv2D(64, 1, use_bias=False, name="Conv_1")(x)
    x = L.ReLU(6.0, name="out_relu")(bn("Conv_1_bn")(x))
    x = L.GlobalAveragePooling2D(name="global_average_pooling2d")(x)
    return K.Model(inp, L.Dense(10, activation="softmax", name="dense")(x))


CASES = {
    "specs/fashion_mnist_dense.yaml": dense_net,
    "specs/fashion_mnist_cnn.yaml": cnn,
    "specs/fashion_mnist_cnn_ensemble.yaml": cnn,
    "specs/rotation_regression_cnn.yaml": lambda K: cnn(K, 1, None),
    "specs/fashion_mnist_vgg.yaml": vgg,
    "examples/conv_autoencoder.yaml": autoencoder,
    "examples/small_resnet.yaml": resnet,
    "examples/two_head.yaml": two_head,
    "examples/two_input.yaml": two_input,
    "examples/text_lstm.yaml": text_lstm,
    "examples/tiny_transformer.yaml": tiny_transformer,
    "examples/inverted_residual.yaml": inverted_residual,
}


def keras_rows(model):
    rows = []
    for layer in model.layers:
        shape = layer.output.shape if not isinstance(layer.output, (list, tuple)) else layer.output[0].shape
        rows.append((type(layer).__name__, tuple(shape), layer.count_params()))
    return rows


def test_every_spec_and_example_has_a_hand_built_keras_twin():
    from conftest import EXAMPLES, SPECS

    have = {str(p.relative_to(ROOT)) for p in SPECS + EXAMPLES}
    assert have == set(CASES), f"add a hand-built Keras model for: {sorted(have - set(CASES))}"


@pytest.mark.parametrize("path", list(CASES), ids=lambda p: p.split("/")[-1])
def test_counts_and_shapes_equal_keras(K, path):
    model = CASES[path](K)
    s = nnspec.summarize(str(ROOT / path))
    ours = sorted((r.keras_class, tuple(r.output_shape), r.params) for r in s.rows)
    theirs = sorted(keras_rows(model))
    # Symbolic sequence lengths print as None in Keras.
    ours = sorted((c, tuple(None if isinstance(d, str) else d for d in shp), p) for c, shp, p in ours)
    assert ours == theirs
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    frozen = sum(int(w.numpy().size) for w in model.non_trainable_weights)
    assert (s.total_params, s.trainable_params, s.non_trainable_params) == (model.count_params(), trainable, frozen)


def test_names_equal_keras_auto_names_for_the_vgg(K):
    # Build the VGG with Keras's automatic names in a fresh naming scope.
    from keras.src.backend.common import global_state

    global_state.clear_session()
    L = K.layers
    inp = K.Input((28, 28, 1), name="img")
    x = inp
    for i, f in enumerate((8, 16, 32)):
        x = L.Conv2D(f, 3, padding="same")(x)
        x = L.Conv2D(f, 3, padding="same")(x)
        x = L.Activation("relu")(L.BatchNormalization()(x))
        if i < 2:
            x = L.MaxPooling2D()(x)
    for layer in (L.Flatten(), L.Dense(256, activation="relu"), L.Dropout(0.5), L.Dense(64, activation="relu"),
                  L.Dense(10, activation="softmax")):
        x = layer(x)
    model = K.Model(inp, x)
    s = nnspec.summarize(str(ROOT / "specs" / "fashion_mnist_vgg.yaml"))
    assert [r.name for r in s.rows] == [layer.name for layer in model.layers]


def test_catalog_auto_names_match_keras(K):
    from keras.src.utils.naming import to_snake_case

    from nnspec.layers import registry

    for name, cls in registry.all_types().items():
        assert cls.auto_name() == to_snake_case(getattr(K.layers, cls.keras_class).__name__), name


def test_block_prefix_templates_give_keras_applications_names(K):
    # Conditions, shapes inside blocks and `prefix:` templates reproduce MobileNetV2's own layer names.
    model = inverted_residual(K)
    spec = nnspec.load(str(ROOT / "examples" / "inverted_residual.yaml"))
    assert list(spec.graph.nodes) == [layer.name for layer in model.layers]
