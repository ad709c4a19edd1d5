"""keras.applications written as nnspec specs (examples/applications/): each spec builds, on both
backends, the model Keras builds — the same layer names, output shapes and parameter counts, the same
trainable/non-trainable totals, the same initializers — and, with the Keras model's own weights copied in
by name, the same outputs on a random image (through the model's own `preprocess_input`, as its users
feed it). Each spec is at most half as long as the Keras functions that build the model.

The models are real (millions of parameters, seconds to build on 2 cores): one test per model, marked
`slow` so that `-m "not slow"` leaves them out; the default run keeps them."""

from __future__ import annotations

import inspect
import pathlib

import numpy as np
import pytest

import nnspec

pytestmark = [pytest.mark.keras, pytest.mark.torch, pytest.mark.slow]

APPS = pathlib.Path(__file__).resolve().parent.parent / "examples" / "applications"

# spec file -> (keras.applications constructor, the module in keras/src/applications and the function, or the
# functions, whose source the spec must be at most half of: the generic builder with the helpers it calls)
MODELS = {
    "densenet.yaml": ("DenseNet121", "densenet", ("DenseNet", "dense_block", "transition_block", "conv_block")),
    "efficientnet_b0.yaml": ("EfficientNetB0", "efficientnet", "EfficientNet"),
    "efficientnet_v2.yaml": ("EfficientNetV2B0", "efficientnet_v2", ("EfficientNetV2", "MBConvBlock", "FusedMBConvBlock")),
    "inception_v3.yaml": ("InceptionV3", "inception_v3", ("InceptionV3", "conv2d_bn")),
    "mobilenet.yaml": ("MobileNet", "mobilenet", ("MobileNet", "_conv_block", "_depthwise_conv_block")),
    "mobilenet_v2.yaml": ("MobileNetV2", "mobilenet_v2", "MobileNetV2"),
    "mobilenet_v3_small.yaml": ("MobileNetV3Small", "mobilenet_v3", "MobileNetV3"),
    "nasnet.yaml": ("NASNetMobile", "nasnet", ("NASNet", "_separable_conv_block", "_adjust_block", "_normal_a_cell",
                                               "_reduction_a_cell")),
    "resnet50.yaml": ("ResNet50", "resnet", "ResNet"),
    "resnet_v2.yaml": ("ResNet50V2", "resnet", ("ResNet", "residual_block_v2", "stack_residual_blocks_v2")),
    "vgg.yaml": ("VGG16", "vgg16", "VGG16"),
    "xception.yaml": ("Xception", "xception", "Xception"),
}


def _keras_rows(model) -> dict[str, tuple[tuple, int]]:
    """Every Keras layer and operation (`x + 3.0` is an `add` operation, no layer): name -> (output shape
    without the batch, parameter count)."""
    return {op.name: (tuple(op.output.shape[1:]), op.count_params() if hasattr(op, "count_params") else 0)
            for op in model.operations}


def _spec_rows(spec) -> dict[str, tuple[tuple, int]]:
    return {name: (tuple(info.output_shape[1:]), info.param_count) for name, info in spec.analysis.nodes.items()}


def _initializers(model) -> dict[tuple[str, str], tuple[str, dict]]:
    """Every layer's initializers: (layer, attribute) -> (class, settings without the seed), so a fresh
    model starts from the same distributions (EfficientNet's VarianceScaling(fan_out), Keras's defaults)."""
    return {(layer.name, attr): (type(init).__name__, {k: v for k, v in init.get_config().items() if k != "seed"})
            for layer in model.layers for attr in ("kernel_initializer", "depthwise_initializer", "bias_initializer")
            if (init := getattr(layer, attr, None)) is not None}


def _perturb(model) -> None:
    """Give the untrained model's biases and batch-norm statistics random values: with Keras's fresh ones
    (zeros, ones) MobileNetV3Small's hard-swish head outputs exactly uniform scores for every image."""
    rng = np.random.default_rng(1)
    for w in model.weights:
        if w.name in ("bias", "beta", "moving_mean"):
            w.assign(rng.normal(0.0, 0.1, w.shape).astype(np.float32))
        elif w.name in ("gamma", "moving_variance"):
            w.assign(rng.uniform(0.5, 1.5, w.shape).astype(np.float32))


def _same(got: np.ndarray, want: np.ndarray) -> None:
    """Within 1e-5 as probabilities; and, for every class Keras gives more than 1e-6, within 1e-4 as
    log-probabilities (the logits up to a constant): an untrained network's softmax can be close to
    uniform (every class near 1/1000), where absolute differences alone would tell little."""
    assert np.max(np.abs(got - want)) < 1e-5
    seen = want > 1e-6
    log_got, log_want = np.log(got[seen].astype(np.float64)), np.log(want[seen].astype(np.float64))
    # the scores must differ (a uniform output would compare nothing); a saturated softmax, with one class
    # near 1, differs enough even though only that class is above 1e-6
    assert np.ptp(want) > 1e-2 * np.max(want), "the random image gives every class the same score: nothing is compared"
    assert np.max(np.abs(log_got - log_want)) < 1e-4


@pytest.mark.parametrize("file", sorted(MODELS))
def test_application_matches_keras(file):
    import keras
    import torch

    from nnspec.api import import_keras
    from nnspec.backends import keras as kb
    from nnspec.backends import torch as tb

    constructor, module, functions = MODELS[file]
    functions = (functions,) if isinstance(functions, str) else functions
    keras_module = __import__(f"keras.src.applications.{module}", fromlist=["_"])
    source_lines = sum(len(inspect.getsource(getattr(keras_module, f)).splitlines()) for f in functions)
    spec_lines = len((APPS / file).read_text().splitlines())
    assert spec_lines <= source_lines // 2, f"{file}: {spec_lines} lines, Keras's {', '.join(functions)}: " \
        f"{source_lines}"

    keras.backend.clear_session()  # Keras's automatic names (conv2d_1, add_3, ...) count from zero again
    # the same fresh weights in every run: float32 differences depend on them (DenseNet121 gave 2e-7 to 7e-6
    # in separate runs), and a comparison near its tolerance must not pass or fail by chance
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, constructor)(weights=None)
    spec = nnspec.load(APPS / file)
    assert spec.name == model.name
    assert spec.total_params == model.count_params()
    assert spec.trainable_params == sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert spec.total_params - spec.trainable_params == sum(
        int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert _spec_rows(spec) == _keras_rows(model)

    _perturb(model)
    _, _, weights = import_keras(model)  # Keras's weights in nnspec's neutral layout, by layer name
    height, width, channels = (d or 224 for d in model.input_shape[1:])
    # a random image, preprocessed as Keras's users do (`preprocess_input`: to [-1, 1], mean-subtracted, or
    # left as pixels where the model rescales itself): the range the network is built for, where its scores
    # differ rather than saturate
    pixels = np.random.default_rng(0).uniform(0, 255, (1, height, width, channels)).astype(np.float32)
    preprocess = inspect.getmodule(getattr(keras.applications, constructor)).preprocess_input  # resnet_v2's, not resnet's
    x = np.ascontiguousarray(preprocess(pixels), dtype=np.float32)
    want = keras.ops.convert_to_numpy(model(x, training=False))
    built = kb.build(spec, seed=0)
    assert _initializers(built) == _initializers(model)
    kb.set_weights(built, spec, weights)
    got_keras = keras.ops.convert_to_numpy(built(x, training=False))
    print(f"{file}: max |difference| keras {np.max(np.abs(got_keras - want)):.3g}", end=" ")
    _same(got_keras, want)
    module_ = tb.build(spec, seed=0).eval()
    tb.set_weights(module_, spec, weights)
    with torch.no_grad():
        got = module_(torch.from_numpy(x)).numpy()
    print(f"torch {np.max(np.abs(got - want)):.3g}")
    _same(got, want)


# a family's other sizes: spec file, keras.applications constructor, the spec's var settings (ResNet152V2 is
# left out: ResNet101V2 with other stage lengths, and 5 s to build in Keras)
SIZES = [
    # B1 (depth only), B2 (width 1.1, odd feature maps: padding read from the input) and B5; B3, B4, B6, B7
    # match too but take 2-6 s each to build in Keras on 2 cores
    *[("efficientnet_b0.yaml", f"EfficientNetB{n}", [f"vars.size={n}"]) for n in (1, 2, 5)],
    # B3 (width 1.2, depth 1.4), S and M (their own block tables, M with a 7th stage); B1, B2 and L match too
    ("efficientnet_v2.yaml", "EfficientNetV2B3", ["vars.size=3"]),
    ("efficientnet_v2.yaml", "EfficientNetV2S", ["vars.size=4"]),
    ("efficientnet_v2.yaml", "EfficientNetV2M", ["vars.size=5"]),
    ("mobilenet_v3_small.yaml", "MobileNetV3Large", ["vars.large=true"]),
    ("nasnet.yaml", "NASNetLarge", ["vars.large=true"]),
    ("resnet_v2.yaml", "ResNet101V2", ["vars.depth=101"]),
    ("resnet50.yaml", "ResNet101", ["vars.depth=101"]),
    ("resnet50.yaml", "ResNet152", ["vars.depth=152"]),
    ("densenet.yaml", "DenseNet169", ["vars.depth=169"]),
    ("densenet.yaml", "DenseNet201", ["vars.depth=201"]),
    ("vgg.yaml", "VGG19", ["vars.depth=19"]),
    # a fourth item gives the Keras arguments that the vars stand for
    ("mobilenet.yaml", "MobileNet", ["vars.alpha=0.75", "vars.depth_multiplier=2", "vars.resolution=192"],
     {"alpha": 0.75, "depth_multiplier": 2, "input_shape": (192, 192, 3)}),
    ("mobilenet.yaml", "MobileNet", ["vars.alpha=0.25", "vars.resolution=128"],
     {"alpha": 0.25, "input_shape": (128, 128, 3)}),
]


@pytest.mark.parametrize(("file", "constructor", "overrides", "arguments"), [(*size, {})[:4] for size in SIZES],
                         ids=[size[1] + "".join(f"-{o.removeprefix('vars.')}" for o in size[2] if len(size) > 3) for size in SIZES])
def test_application_sizes_match_keras(file, constructor, overrides, arguments):
    """The family's other sizes, selected by vars: the model name, every layer's name, output shape and
    parameter count, and the totals, as Keras builds them (no forward pass: the canonical size has one)."""
    import keras

    keras.backend.clear_session()
    model = getattr(keras.applications, constructor)(weights=None, **arguments)
    spec = nnspec.load(APPS / file, overrides=overrides)
    assert spec.name == model.name
    assert spec.total_params == model.count_params()
    assert spec.trainable_params == sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert _spec_rows(spec) == _keras_rows(model)
