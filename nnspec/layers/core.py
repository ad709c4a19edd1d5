"""Dense, embedding, reshaping, dropout and noise, rescaling, resizing, padding and cropping layers."""

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
    attributes = {
        "rate": Attr("float", "Fraction of inputs to drop.", required=True, minimum=0, exclusive_maximum=1),
        "noise_shape": Attr(
            "noise_shape",
            "Shape of the dropout mask, one entry per input axis (batch included); null takes the input's size, "
            "1 shares one mask value along that axis (e.g. [null, 1, null] drops the same features at every step).",
            nullable=True,
        ),
    }

    def output_shape(self, shapes, a):
        x, noise = shapes[0], a.get("noise_shape")
        if noise is not None:
            if len(noise) != len(x):
                raise ShapeProblem(
                    f"dropout noise_shape {list(noise)} has {len(noise)} entries, the input {format_shape(x)} has "
                    f"{len(x)} axes (batch included)",
                    hint="give one entry per axis; null keeps the input's size", attr="noise_shape",
                )
            for i, (n, d) in enumerate(zip(noise, x, strict=True)):
                if n is not None and n != 1 and known(d) and n != d:
                    raise ShapeProblem(
                        f"dropout noise_shape entry {n} on axis {i} must be 1, null or the input's size {d} "
                        f"(input {format_shape(x)})", attr="noise_shape",
                    )
        return x


@register
class GaussianNoise(LayerType):
    name = "gaussian_noise"
    keras_class = "GaussianNoise"
    summary = "Adds zero-mean Gaussian noise with standard deviation stddev while training; identity at inference."
    family = "regularization"
    primary = "stddev"
    key_attrs = ("stddev",)
    attributes = {"stddev": Attr("float", "Standard deviation of the noise.", required=True, minimum=0)}


@register
class Rescaling(LayerType):
    name = "rescaling"
    keras_class = "Rescaling"
    summary = "Multiplies by scale and adds offset: x * scale + offset (e.g. scale: 0.00392156862745098 for 1/255)."
    family = "preprocessing"
    primary = "scale"
    key_attrs = ("scale", "offset")
    attributes = {
        "scale": Attr("float", "Factor applied to the input.", required=True),
        "offset": Attr("float", "Added after scaling.", default=0.0),
    }


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


@register
class UpSampling1D(LayerType):
    name = "upsampling1d"
    keras_class = "UpSampling1D"
    aliases = ("up_sampling1d",)
    summary = "Repeats every step `size` times."
    family = "reshaping"
    ranks = (3,)
    primary = "size"
    key_attrs = ("size",)
    attributes = {"size": Attr("int", "Upsampling factor.", default=2, minimum=1)}

    def output_shape(self, shapes, a):
        n, steps, c = shapes[0]
        return (n, steps * a["size"] if known(steps) else None, c)


def _cropped(layer: str, x, axis: int, before: int, after: int):
    length = x[axis]
    if not known(length):
        return None
    if before + after >= length:
        raise ShapeProblem(
            f"{layer} removes {before} + {after} of the {length} positions on axis {axis} of {format_shape(x)}, "
            "leaving nothing", hint="crop less", attr="cropping",
        )
    return length - before - after


@register
class Cropping1D(LayerType):
    name = "cropping1d"
    keras_class = "Cropping1D"
    summary = "Removes steps at the start and end of a sequence."
    family = "reshaping"
    ranks = (3,)
    primary = "cropping"
    key_attrs = ("cropping",)
    attributes = {"cropping": Attr("ints", "Steps removed: n (both ends) or [start, end].", default=1, minimum=0, length=2)}

    def output_shape(self, shapes, a):
        x = shapes[0]
        before, after = as_tuple(a["cropping"], 2)
        return (x[0], _cropped(self.name, x, 1, before, after), x[2])


@register
class Cropping2D(LayerType):
    name = "cropping2d"
    keras_class = "Cropping2D"
    summary = "Removes rows and columns at the borders of an image."
    family = "reshaping"
    ranks = (4,)
    primary = "cropping"
    key_attrs = ("cropping",)
    attributes = {
        "cropping": Attr("padding2d", "Removed: n, [rows, cols] (both sides) or [[top, bottom], [left, right]].", default=0)
    }

    def output_shape(self, shapes, a):
        x = shapes[0]
        (t, b), (lft, r) = normalize_padding2d(a["cropping"])
        return (x[0], _cropped(self.name, x, 1, t, b), _cropped(self.name, x, 2, lft, r), x[3])
