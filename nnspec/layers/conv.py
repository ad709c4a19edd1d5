"""Convolutions: conv1d, conv2d, conv3d, conv2d_transpose, depthwise_conv2d, separable_conv2d."""

from __future__ import annotations

from nnspec.errors import ShapeProblem
from nnspec.layers.base import WEIGHT_ATTRS, Attr, LayerType, Param, format_shape, known, prod
from nnspec.layers.registry import register
from nnspec.layers.shape_utils import as_tuple, conv_output_length, deconv_output_length

PADDING = Attr("enum", "valid: no padding; same: output size = ceil(input / stride).", default="valid", choices=("valid", "same"))


def _spatial_out(layer: str, x, a, n: int, transpose: bool = False):
    """Output spatial dims; raises when a kernel leaves no output."""
    kernel = as_tuple(a["kernel_size"], n)
    strides = as_tuple(a.get("strides", 1), n)
    dilation = as_tuple(a.get("dilation_rate", 1), n)
    spatial = x[1 : 1 + n]
    out = []
    for i, (length, k, s, d) in enumerate(zip(spatial, kernel, strides, dilation, strict=False)):
        if transpose:
            op = a.get("output_padding")
            op = as_tuple(op, n)[i] if op is not None else None
            out.append(deconv_output_length(length, k, s, a["padding"], op, d))
            continue
        length_out = conv_output_length(length, k, s, a["padding"], d)
        if known(length_out) and length_out <= 0:
            raise ShapeProblem(
                f"{layer} kernel_size {list(kernel)} leaves no output: the input {format_shape(x)} is only "
                f"{length} wide on spatial axis {i + 1} with padding '{a['padding']}'",
                hint="use a smaller kernel, padding: same, or remove a pooling layer before it",
                attr="kernel_size",
            )
        out.append(length_out)
    return out


def _check_channels(layer: str, x):
    if not known(x[-1]):
        raise ShapeProblem(f"{layer} needs a known number of channels (last axis), got {format_shape(x)}")


class _Conv(LayerType):
    family = "convolution"
    n = 2

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.spatial_rank = cls.n
    key_attrs = ("filters", "kernel_size", "strides", "padding", "activation")

    @classmethod
    def conv_attrs(cls, n: int, dilation: bool = True, groups: bool = True) -> dict:
        attrs = {
            "filters": Attr("int", "Number of output channels.", required=True, minimum=1),
            "kernel_size": Attr("ints", "Window size.", required=True, minimum=1, length=n),
            "strides": Attr("ints", "Step of the window.", default=1, minimum=1, length=n),
            "padding": PADDING,
        }
        if dilation:
            attrs["dilation_rate"] = Attr("ints", "Spacing between kernel taps.", default=1, minimum=1, length=n)
        if groups:
            attrs["groups"] = Attr("int", "Channel groups (filters and input channels divisible by it).", default=1, minimum=1)
        attrs["activation"] = Attr("activation", "Activation applied to the output.", default="linear")
        return {**attrs, **WEIGHT_ATTRS}

    def output_shape(self, shapes, a):
        x = shapes[0]
        _check_channels(self.name, x)
        if as_tuple(a.get("strides", 1), self.n) != (1,) * self.n and as_tuple(a.get("dilation_rate", 1), self.n) != (1,) * self.n:
            raise ShapeProblem(f"{self.name} cannot combine strides > 1 with dilation_rate > 1", attr="strides", code="value")
        g = a.get("groups", 1)
        if x[-1] % g or a["filters"] % g:
            raise ShapeProblem(
                f"{self.name} groups={g} must divide both the input channels ({x[-1]}) and filters ({a['filters']})",
                attr="groups",
            )
        return (x[0], *_spatial_out(self.name, x, a, self.n), a["filters"])

    def param_shapes(self, shapes, a):
        cin = shapes[0][-1] // a.get("groups", 1)
        params = [Param("kernel", (*as_tuple(a["kernel_size"], self.n), cin, a["filters"]))]
        if a["use_bias"]:
            params.append(Param("bias", (a["filters"],)))
        return params

    def macs(self, shapes, out, a):
        k = prod(as_tuple(a["kernel_size"], self.n))
        spatial = prod(out[1:-1]) or 0
        return spatial * k * (shapes[0][-1] // a.get("groups", 1)) * a["filters"]


@register
class Conv1D(_Conv):
    name = "conv1d"
    keras_class = "Conv1D"
    summary = "1-D convolution over (steps, channels) inputs."
    n = 1
    ranks = (3,)
    attributes = _Conv.conv_attrs(1)


@register
class Conv2D(_Conv):
    name = "conv2d"
    keras_class = "Conv2D"
    summary = "2-D convolution over (height, width, channels) inputs."
    n = 2
    ranks = (4,)
    attributes = _Conv.conv_attrs(2)


@register
class Conv3D(_Conv):
    name = "conv3d"
    keras_class = "Conv3D"
    aliases = ("convolution3d",)
    summary = "3-D convolution over (depth, height, width, channels) inputs (volumes, video)."
    n = 3
    ranks = (5,)
    attributes = _Conv.conv_attrs(3)


@register
class Conv2DTranspose(_Conv):
    name = "conv2d_transpose"
    keras_class = "Conv2DTranspose"
    summary = "Transposed 2-D convolution (learned upsampling), Keras output-size rules."
    n = 2
    ranks = (4,)
    attributes = {
        **_Conv.conv_attrs(2, dilation=False, groups=False),
        "output_padding": Attr("ints", "Extra rows/columns added to one side of the output.", minimum=0, length=2, nullable=True),
    }

    def output_shape(self, shapes, a):
        x = shapes[0]
        _check_channels(self.name, x)
        op = a.get("output_padding")
        if op is not None:
            for p, s in zip(as_tuple(op, 2), as_tuple(a["strides"], 2), strict=False):
                if p >= s:
                    raise ShapeProblem(
                        f"conv2d_transpose output_padding ({p}) must be smaller than strides ({s})",
                        attr="output_padding",
                        code="value",
                    )
        return (x[0], *_spatial_out(self.name, x, a, 2, transpose=True), a["filters"])

    def param_shapes(self, shapes, a):
        # Keras stores the transposed kernel as (kh, kw, out, in).
        params = [Param("kernel", (*as_tuple(a["kernel_size"], 2), a["filters"], shapes[0][-1]))]
        if a["use_bias"]:
            params.append(Param("bias", (a["filters"],)))
        return params

    def macs(self, shapes, out, a):
        return (prod(shapes[0][1:-1]) or 0) * prod(as_tuple(a["kernel_size"], 2)) * shapes[0][-1] * a["filters"]


@register
class DepthwiseConv2D(_Conv):
    name = "depthwise_conv2d"
    keras_class = "DepthwiseConv2D"
    summary = "Per-channel 2-D convolution with depth_multiplier filters per input channel."
    n = 2
    ranks = (4,)
    key_attrs = ("kernel_size", "depth_multiplier", "strides", "padding", "activation")
    attributes = {
        "kernel_size": Attr("ints", "Window size.", required=True, minimum=1, length=2),
        "depth_multiplier": Attr("int", "Output channels per input channel.", default=1, minimum=1),
        "strides": Attr("ints", "Step of the window.", default=1, minimum=1, length=2),
        "padding": PADDING,
        "dilation_rate": Attr("ints", "Spacing between kernel taps.", default=1, minimum=1, length=2),
        "activation": Attr("activation", "Activation applied to the output.", default="linear"),
        "depthwise_initializer": Attr("initializer", "Initializer of the depthwise kernel.", default="glorot_uniform"),
        "depthwise_regularizer": WEIGHT_ATTRS["kernel_regularizer"],
        **{k: v for k, v in WEIGHT_ATTRS.items() if k not in ("kernel_initializer", "kernel_regularizer")},
    }

    def output_shape(self, shapes, a):
        x = shapes[0]
        _check_channels(self.name, x)
        return (x[0], *_spatial_out(self.name, x, a, 2), x[-1] * a["depth_multiplier"])

    def param_shapes(self, shapes, a):
        cin, dm = shapes[0][-1], a["depth_multiplier"]
        params = [Param("kernel", (*as_tuple(a["kernel_size"], 2), cin, dm), initializer_attr="depthwise_initializer",
                        default_initializer="glorot_uniform", regularizer_attr="depthwise_regularizer")]
        if a["use_bias"]:
            params.append(Param("bias", (cin * dm,)))
        return params

    def macs(self, shapes, out, a):
        return (prod(out[1:-1]) or 0) * prod(as_tuple(a["kernel_size"], 2)) * out[-1]


@register
class SeparableConv2D(_Conv):
    name = "separable_conv2d"
    keras_class = "SeparableConv2D"
    summary = "Depthwise then 1x1 pointwise convolution; one bias, on the pointwise output (Keras)."
    n = 2
    ranks = (4,)
    attributes = {
        "filters": Attr("int", "Number of output channels.", required=True, minimum=1),
        "kernel_size": Attr("ints", "Window size.", required=True, minimum=1, length=2),
        "depth_multiplier": Attr("int", "Depthwise channels per input channel.", default=1, minimum=1),
        "strides": Attr("ints", "Step of the window.", default=1, minimum=1, length=2),
        "padding": PADDING,
        "dilation_rate": Attr("ints", "Spacing between kernel taps.", default=1, minimum=1, length=2),
        "activation": Attr("activation", "Activation applied to the output.", default="linear"),
        "depthwise_initializer": Attr("initializer", "Initializer of the depthwise kernel.", default="glorot_uniform"),
        "pointwise_initializer": Attr("initializer", "Initializer of the pointwise kernel.", default="glorot_uniform"),
        "depthwise_regularizer": WEIGHT_ATTRS["kernel_regularizer"],
        "pointwise_regularizer": WEIGHT_ATTRS["kernel_regularizer"],
        **{k: v for k, v in WEIGHT_ATTRS.items() if k not in ("kernel_initializer", "kernel_regularizer")},
    }

    def output_shape(self, shapes, a):
        x = shapes[0]
        _check_channels(self.name, x)
        return (x[0], *_spatial_out(self.name, x, a, 2), a["filters"])

    def param_shapes(self, shapes, a):
        cin, dm = shapes[0][-1], a["depth_multiplier"]
        params = [
            Param("depthwise_kernel", (*as_tuple(a["kernel_size"], 2), cin, dm)),
            Param("pointwise_kernel", (1, 1, cin * dm, a["filters"])),
        ]
        if a["use_bias"]:
            params.append(Param("bias", (a["filters"],)))
        return params

    def macs(self, shapes, out, a):
        spatial = prod(out[1:-1]) or 0
        cin, dm = shapes[0][-1], a["depth_multiplier"]
        return spatial * (prod(as_tuple(a["kernel_size"], 2)) * cin * dm + cin * dm * a["filters"])
