"""The layer catalog (pure Python). See :mod:`nnspec.layers.base` for the contract."""

from nnspec.layers.base import Attr, LayerType, Param
from nnspec.layers.registry import all_types, canonical, get, register

__all__ = ["Attr", "LayerType", "Param", "all_types", "canonical", "get", "register"]
