"""Dense, embedding, reshaping, dropout, resizing and padding layers."""

from __future__ import annotations

import math

from nnspec.errors import ShapeProblem
from nnspec.layers.base import WEIGHT_ATTRS, Attr, LayerType, Param, format_shape, known, prod, rank_error
from nnspec.layers.registry import register
from nnspec.layers.shape_utils import as_tuple, normalize_padding2d


@register
class Dense(LayerType):
    name = "dense"
    keras_class = "Dense"
    summary = "Fully connected layer on the last axis: y = activation(x W + b)."
    primary = "units"
    key_attrs = ("units", "activation")
    attributes = {
        "units": Attr("int", "Number of output units.", required=True, minimum=1),
        "activation": Attr("activation", "Activation applied to the output.", default="linear"),
        **WEIGHT_ATTRS,
    }

    def output_shape(self, shapes, a):
        x = shapes[0]
        if len(x) >= 4:
            raise rank_error(
                "dense",
                x,
                (2, 3),
                hint="add a `flatten` layer (or global pooling) before this dense layer",
            )
        if len(x) < 2:
            raise rank_error("dense", x, (2, 3))
        if not known(x[-1]):
            raise ShapeProblem(f"dense needs a known last dimension, got {format_shape(x)}")
        return (*x[:-1], a["units"])

    def param_shapes(self, shapes, a):
        params = [Param("kernel", (shapes[0][-1], a["units"]))]
        if a["use_bias"]:
            params.append(Param("bias", (a["units"],)))
        return params

    def macs(self, shapes, out, a):
        return (prod(shapes[0][1:-1]) or 1) * shapes[0][-1] * a["units"]


@register
class Embedding(LayerType):
    name = "embedding"
    keras_class = "Embedding"
    summary = "Maps integer indices in [0, input_dim) to dense vectors of size output_dim."
    ranks = (2,)
    key_attrs = ("input_dim", "output_dim")
    attributes = {
        "input_dim": Attr("int", "Vocabulary size (largest index + 1).", required=True, minimum=1),
        "output_dim": Attr("int", "Size of each embedding vector.", required=True, minimum=1),
        "embeddings_initializer": Attr("initializer", "Initializer of the table.", default="random_uniform"),
        "embeddings_regularizer": WEIGHT_ATTRS["kernel_regularizer"],
        "mask_zero": Attr("bool", "Treat index 0 as padding.", default=False),
    }

    def output_shape(self, shapes, a):
        return (*shapes[0], a["output_dim"])

    def param_shapes(self, shapes, a):
        return [Param("embeddings", (a["input_dim"], a["output_dim"]))]


@register
class Flatten(LayerType):
    name = "flatten"
    keras_class = "Flatten"
    summary = "Flattens all but the batch axis (in H, W, C order, as Keras)."

    def output_shape(self, shapes, a):
        x = shapes[0]
        if len(x) < 2:
            raise rank_error("flatten", x, (2, 3, 4, 5))
        n = prod(x[1:])
        if n is None:
            raise ShapeProblem(
                f"flatten needs every dimension known, got {format_shape(x)}",
                hint="use global pooling for inputs of variable size",
            )
        return (None, n)


@register
class Reshape(LayerType):
    name = "reshape"
    keras_class = "Reshape"
    summary = "Reshapes to target_shape (batch excluded); one entry may be -1."
    primary = "target_shape"
    key_attrs = ("target_shape",)
    attributes = {
        "target_shape": Attr("int_list", "New shape without batch; -1 infers one dimension.", required=True, minimum=-1),
    }

    def output_shape(self, shapes, a):
        x, target = shapes[0], list(a["target_shape"])
        if target.count(-1) > 1 or 0 in target:
            raise ShapeProblem("reshape allows at most one -1 and no 0 in target_shape", attr="target_shape")
        n = prod(x[1:])
        if n is None:
            return (None, *[None if t == -1 else t for t in target])
        fixed = math.prod(t for t in target if t != -1)
        if -1 in target:
            if n % fixed:
                raise ShapeProblem(
                    f"cannot reshape {format_shape(x)} ({n} values) to {target}: {n} is not a multiple of {fixed}",
                    attr="target_shape",
                )
            target[target.index(-1)] = n // fixed
        elif fixed != n:
            raise ShapeProblem(
                f"cannot reshape {format_shape(x)} ({n} values) to {target} ({fixed} values)",
                attr="target_shape",
            )
        return (None, *target)


@register
class Permute(LayerType):
    name = "permute"
    keras_class = "Permute"
    summary = "Permutes the non-batch axes; dims are 1-based, as in Keras (e.g. [2, 1])."
    primary = "dims"
    key_attrs = ("dims",)
    attributes = {"dims": Attr("int_list", "Permutation of 1..rank-1.", required=True, minimum=1)}

    def output_shape(self, shapes, a):
        x, dims = shapes[0], list(a["dims"])
        if sorted(dims) != list(range(1, len(x))):
            raise ShapeProblem(
                f"permute dims {dims} must be a permutation of 1..{len(x) - 1} for input {format_shape(x)}",
                attr="dims",
            )
        return (None, *[x[d] for d in dims])


@register
class Dropout(LayerType):
    name = "dropout"
    keras_class = "Dropout"
    summary = "Randomly zeroes a fraction `rate` of the inputs while training (inverted dropout)."
    family = "regularization"
    primary = "rate"
    key_attrs = ("rate",)
    attributes = {"rate": Attr("float", "Fraction of inputs to drop.", required=True, minimum=0, exclusive_maximum=1)}


@register
class SpatialDropout2D(LayerType):
    name = "spatial_dropout2d"
    keras_class = "SpatialDropout2D"
    summary = "Drops whole feature maps (channels) while training."
    family = "regularization"
    primary = "rate"
    ranks = (4,)
    key_attrs = ("rate",)
    attributes = {"rate": Attr("float", "Fraction of channels to drop.", required=True, minimum=0, exclusive_maximum=1)}


@register
class UpSampling2D(LayerType):
    name = "upsampling2d"
    keras_class = "UpSampling2D"
    aliases = ("up_sampling2d",)
    summary = "Repeats rows and columns by `size` (nearest) or interpolates (bilinear)."
    family = "reshaping"
    ranks = (4,)
    key_attrs = ("size", "interpolation")
    primary = "size"
    attributes = {
        "size": Attr("ints", "Upsampling factors (rows, columns).", default=2, minimum=1, length=2),
        "interpolation": Attr("enum", "Interpolation.", default="nearest", choices=("nearest", "bilinear")),
    }

    def output_shape(self, shapes, a):
        n, h, w, c = shapes[0]
        sh, sw = as_tuple(a["size"], 2)
        return (n, h * sh if known(h) else None, w * sw if known(w) else None, c)


@register
class ZeroPadding2D(LayerType):
    name = "zero_padding2d"
    keras_class = "ZeroPadding2D"
    summary = "Pads rows and columns with zeros."
    family = "reshaping"
    ranks = (4,)
    key_attrs = ("padding",)
    primary = "padding"
    attributes = {"padding": Attr("padding2d", "Padding: n, [rows, cols] or [[top, bottom], [left, right]].", default=1)}

    def output_shape(self, shapes, a):
        n, h, w, c = shapes[0]
        (t, b), (lft, r) = normalize_padding2d(a["padding"])
        return (n, h + t + b if known(h) else None, w + lft + r if known(w) else None, c)
