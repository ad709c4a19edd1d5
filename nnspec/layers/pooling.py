"""Max/average pooling (1-D, 2-D, 3-D) and their global forms."""

from __future__ import annotations

from nnspec.errors import ShapeProblem
from nnspec.layers.base import Attr, LayerType, format_shape
from nnspec.layers.registry import register
from nnspec.layers.shape_utils import as_tuple, conv_output_length


class _Pool(LayerType):
    family = "pooling"
    n = 2

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.spatial_rank = cls.n
    key_attrs = ("pool_size", "strides", "padding")
    primary = "pool_size"  # every pooling layer, 1-D to 3-D: `- max_pool1d: 2`

    @classmethod
    def pool_attrs(cls, n: int) -> dict:
        return {
            "pool_size": Attr("ints", "Window size.", default=2, minimum=1, length=n),
            "strides": Attr("ints", "Step of the window; defaults to pool_size.", minimum=1, length=n, nullable=True),
            "padding": Attr("enum", "valid or same.", default="valid", choices=("valid", "same")),
        }

    def output_shape(self, shapes, a):
        x = shapes[0]
        pool = as_tuple(a["pool_size"], self.n)
        strides = as_tuple(a["strides"] if a.get("strides") is not None else a["pool_size"], self.n)
        out = []
        for i, (length, p, s) in enumerate(zip(x[1 : 1 + self.n], pool, strides, strict=False)):
            o = conv_output_length(length, p, s, a["padding"])
            if o is not None and o <= 0:
                raise ShapeProblem(
                    f"{self.name} pool_size {list(pool)} is bigger than its input {format_shape(x)} "
                    f"(axis {i + 1} is {length})",
                    hint="use a smaller pool_size, padding: same, or drop this pooling layer",
                    attr="pool_size",
                )
            out.append(o)
        return (x[0], *out, x[-1])


@register
class MaxPool1D(_Pool):
    name = "max_pool1d"
    keras_class = "MaxPooling1D"
    aliases = ("max_pooling1d",)
    summary = "Maximum over windows of steps."
    n = 1
    ranks = (3,)
    attributes = _Pool.pool_attrs(1)


@register
class AvgPool1D(_Pool):
    name = "avg_pool1d"
    keras_class = "AveragePooling1D"
    aliases = ("average_pooling1d",)
    summary = "Mean over windows of steps."
    n = 1
    ranks = (3,)
    attributes = _Pool.pool_attrs(1)


@register
class MaxPool2D(_Pool):
    name = "max_pool2d"
    keras_class = "MaxPooling2D"
    aliases = ("max_pooling2d", "maxpool2d")
    summary = "Maximum over 2-D windows."
    n = 2
    ranks = (4,)
    attributes = _Pool.pool_attrs(2)


@register
class AvgPool2D(_Pool):
    name = "avg_pool2d"
    keras_class = "AveragePooling2D"
    aliases = ("average_pooling2d",)
    summary = "Mean over 2-D windows (padding excluded from the mean, as Keras)."
    n = 2
    ranks = (4,)
    attributes = _Pool.pool_attrs(2)


@register
class MaxPool3D(_Pool):
    name = "max_pool3d"
    keras_class = "MaxPooling3D"
    aliases = ("max_pooling3d",)
    summary = "Maximum over 3-D windows."
    n = 3
    ranks = (5,)
    primary = "pool_size"
    attributes = _Pool.pool_attrs(3)


@register
class AvgPool3D(_Pool):
    name = "avg_pool3d"
    keras_class = "AveragePooling3D"
    aliases = ("average_pooling3d",)
    summary = "Mean over 3-D windows (padding excluded from the mean, as Keras)."
    n = 3
    ranks = (5,)
    primary = "pool_size"
    attributes = _Pool.pool_attrs(3)


class _GlobalPool(LayerType):
    family = "pooling"
    attributes = {"keepdims": Attr("bool", "Keep the pooled axes with size 1.", default=False)}

    def output_shape(self, shapes, a):
        x = shapes[0]
        if a["keepdims"]:
            return (x[0], *([1] * (len(x) - 2)), x[-1])
        return (x[0], x[-1])


@register
class GlobalMaxPool1D(_GlobalPool):
    name = "global_max_pool1d"
    keras_class = "GlobalMaxPooling1D"
    aliases = ("global_max_pooling1d",)
    summary = "Maximum over all steps."
    ranks = (3,)


@register
class GlobalAvgPool1D(_GlobalPool):
    name = "global_avg_pool1d"
    keras_class = "GlobalAveragePooling1D"
    aliases = ("global_average_pooling1d",)
    summary = "Mean over all steps."
    ranks = (3,)


@register
class GlobalMaxPool2D(_GlobalPool):
    name = "global_max_pool2d"
    keras_class = "GlobalMaxPooling2D"
    aliases = ("global_max_pooling2d",)
    summary = "Maximum over height and width."
    ranks = (4,)


@register
class GlobalAvgPool2D(_GlobalPool):
    name = "global_avg_pool2d"
    keras_class = "GlobalAveragePooling2D"
    aliases = ("global_average_pooling2d",)
    summary = "Mean over height and width."
    ranks = (4,)


@register
class GlobalMaxPool3D(_GlobalPool):
    name = "global_max_pool3d"
    keras_class = "GlobalMaxPooling3D"
    aliases = ("global_max_pooling3d",)
    summary = "Maximum over depth, height and width."
    ranks = (5,)


@register
class GlobalAvgPool3D(_GlobalPool):
    name = "global_avg_pool3d"
    keras_class = "GlobalAveragePooling3D"
    aliases = ("global_average_pooling3d",)
    summary = "Mean over depth, height and width."
    ranks = (5,)
