"""The PyTorch backend: a spec compiled to a plain ``torch.nn.Module``.

The model takes and returns the spec's channels-last tensors (N, H, W, C), so weights moved from
or to Keras give the same outputs. Layers live in ``model.layers`` (an ``nn.ModuleDict`` keyed by
nnspec node names). One head returns a tensor; several return ``{head name: tensor}``.
Inputs are passed positionally in the spec's input order, as keyword arguments, or as one dict.

``model.regularization_loss()`` is exactly the penalty Keras adds to the loss for the same spec:
weight penalties of trainable layers plus activity penalties (divided by the batch size, as
Keras 3 does) recorded in the latest forward pass.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
from torch import nn

from nnspec.backends.common import (
    activity_regularizer,
    backend_error,
    check_weights,
    initial_weights,
    node_params,
    param_regularizers,
    plugin_builder,
)
from nnspec.backends.torch.builders import BUILDERS, torch_path
from nnspec.backends.torch.layers import KerasLayer

__all__ = ["BUILDERS", "EXPORT_FORMATS", "NAME", "SpecModel", "build", "ensemble_trainer", "export", "get_weights",
           "layer_counts",
           "runner", "select_device", "set_weights", "trainer", "versions"]

NAME = "torch"
EXPORT_FORMATS = ("onnx", "torchscript")


class SpecModel(nn.Module):
    """A spec's graph evaluated in order; ``layers[name]`` is the module of node ``name``."""

    def __init__(self, spec, layers: dict[str, nn.Module]):
        super().__init__()
        graph = spec.graph
        self.spec_name = spec.name
        self.input_names = list(graph.inputs)
        self.heads = dict(graph.heads)
        self.steps = [(n.name, list(n.inputs)) for n in graph.nodes.values() if not n.is_input]
        self.layers = nn.ModuleDict(layers)
        self.activity = {n.name: f for n in graph.nodes.values() if (f := activity_regularizer(n)) and n.name in layers}
        self.penalties = [
            (n.name, torch_path(n.type, p), l1, l2)
            for n in graph.nodes.values()
            if n.trainable and not n.is_input
            for p, (l1, l2) in param_regularizers(spec, n).items()
        ]
        self._activity_losses: list[torch.Tensor] = []

    def _gather_inputs(self, args, kwargs) -> dict:
        if len(args) == 1 and isinstance(args[0], dict) and not kwargs:
            given = dict(args[0])
        else:
            if len(args) > len(self.input_names):
                raise TypeError(f"{self.spec_name} takes {len(self.input_names)} inputs, got {len(args)}")
            given = dict(zip(self.input_names, args, strict=False))
            given.update(kwargs)
        missing = [n for n in self.input_names if n not in given]
        if missing:
            raise TypeError(f"{self.spec_name} is missing input(s): {', '.join(missing)}")
        return given

    def forward(self, *args, **kwargs):
        values = self._gather_inputs(args, kwargs)
        self._activity_losses = []
        for name, inputs in self.steps:
            y = self.layers[name](*[values[i] for i in inputs])
            if name in self.activity:
                l1, l2 = self.activity[name]
                self._activity_losses.append(_penalty(y, l1, l2) / y.shape[0])
            values[name] = y
        if len(self.heads) == 1:
            return values[next(iter(self.heads.values()))]
        return {head: values[node] for head, node in self.heads.items()}

    def regularization_loss(self) -> torch.Tensor:
        """The penalty Keras adds to the loss: weight regularisers + latest activity regularisers."""
        reference = next(iter(self.parameters()), None)
        total = torch.zeros((), device=reference.device if reference is not None else None)
        for layer, path, l1, l2 in self.penalties:
            total = total + _penalty(self.layers[layer].get_parameter(path), l1, l2)
        for loss in self._activity_losses:
            total = total + loss
        return total


def _penalty(x: torch.Tensor, l1: float, l2: float) -> torch.Tensor:
    out = x.new_zeros(())
    if l1:
        out = out + l1 * x.abs().sum()
    if l2:
        out = out + l2 * x.square().sum()
    return out


def _refuse(spec) -> None:
    for node in spec.graph.nodes.values():
        if node.type == "embedding" and node.attrs.get("mask_zero"):
            raise backend_error(
                spec, node,
                "embedding mask_zero: true cannot be built identically in torch (Keras propagates the mask "
                "into later layers, which skip masked steps)",
                attr="mask_zero",
                hint="set mask_zero: false, or build this spec with backend='keras'",
            )
        if not node.is_input and _builder(node.type) is None:
            raise backend_error(spec, node, f"the torch backend has no builder for layer type `{node.type}`")


def _builder(type_name: str):
    return BUILDERS.get(type_name) or plugin_builder(type_name, "torch")


def build(spec, seed: int | None = None) -> SpecModel:
    """Compile a loaded spec to a torch module, initialised as Keras initialises it.

    ``seed`` makes the build repeatable (and equal to a Keras build with the same seed); without it
    the initial weights come from torch's global generator (so ``torch.manual_seed`` applies).
    """
    from nnspec.pipeline import load

    spec = load(spec)
    _refuse(spec)
    shapes = {name: info.output_shape for name, info in spec.analysis.nodes.items()}
    modules: dict[str, nn.Module] = {}
    for node in spec.graph.nodes.values():
        if node.is_input:
            continue
        module = _builder(node.type)(node, [shapes[i] for i in node.inputs])
        module.frozen = not node.trainable
        if not node.trainable:
            module.requires_grad_(False)
        modules[node.name] = module
    model = SpecModel(spec, modules)
    if seed is None:
        seed = int(torch.randint(0, 2**31 - 1, ()).item())
    set_weights(model, spec, initial_weights(spec, seed))
    return model


def get_weights(model: SpecModel, spec) -> dict[str, np.ndarray]:
    """Every parameter as ``{"<layer>/<param>": array}`` in the catalog's (Keras's) layout."""
    out: dict[str, np.ndarray] = {}
    for node in spec.graph.nodes.values():
        if node.is_input:
            continue
        module = cast(KerasLayer, model.layers[node.name])
        have = module.keras_weights()
        for p in node_params(spec, node.name):
            out[f"{node.name}/{p.name}"] = have[p.name]
    return out


def set_weights(model: SpecModel, spec, weights: dict[str, np.ndarray]) -> None:
    """Load ``{"<layer>/<param>": array}`` (Keras layout); shapes and keys are checked first."""
    check_weights(spec, weights)
    for node in spec.graph.nodes.values():
        if node.is_input:
            continue
        mine = {p.name: weights[f"{node.name}/{p.name}"] for p in node_params(spec, node.name)}
        if mine:
            cast(KerasLayer, model.layers[node.name]).load_keras_weights(mine)


def layer_counts(model: SpecModel, spec) -> dict[str, tuple[int, int]]:
    """Per layer (total, trainable) as torch counts them; BatchNorm's moving statistics are buffers."""
    out: dict[str, tuple[int, int]] = {}
    for name in spec.graph.nodes:
        if name not in model.layers:
            out[name] = (0, 0)
            continue
        module = model.layers[name]
        params = list(module.parameters())
        stats = sum(b.numel() for _, b in module.named_buffers())
        total = sum(p.numel() for p in params) + stats
        out[name] = (total, sum(p.numel() for p in params if p.requires_grad))
    return out


def select_device(requested: str) -> str:
    """``auto`` | ``cpu`` | ``cuda`` -> the device a run uses (a clear error when cuda is missing)."""
    from nnspec.backends.torch.loop import select_device as select

    return select(requested)


def versions() -> dict[str, str]:
    """torch's version and, where a GPU is visible, its CUDA version and the GPU's name."""
    out: dict[str, str] = {"torch": str(torch.__version__)}
    if torch.cuda.is_available():
        out.update(cuda=str(torch.version.cuda), gpu=torch.cuda.get_device_name(0))
    return out


def trainer(spec, settings, train, val, augment=None, parallel=None):
    """A :class:`~nnspec.backends.base.Trainer` for one run (model, optimiser, loop).

    ``parallel``: the collective of several data-parallel replicas (from :func:`init_parallel`).
    """
    from nnspec.backends.torch.loop import Loop

    return Loop(spec, settings, train, val, augment=augment, parallel=parallel)


def init_parallel(world, device: str):
    """Join ``torch.distributed`` (gloo on the CPU, NCCL on GPUs): (collective, this process's device)."""
    from nnspec.backends.torch.distributed import init

    return init(world, device)


def ensemble_trainer(spec, settings, train, val, augment=None):
    """One batched trainer for several ensemble members (``settings``: one per member, same spec).

    Raises :class:`~nnspec.backends.torch.ensemble.BatchingUnsupported` (a ``TrainingError``) when the
    spec's members cannot be batched; the caller then trains them one by one.
    """
    from nnspec.backends.torch.ensemble import EnsembleLoop

    return EnsembleLoop(spec, settings, train, val, augment=augment)


def runner(run, model: SpecModel):
    """The model of a trained run, opened for ``nnspec inspect``."""
    from nnspec.backends.torch.inspection import TorchRunner

    return TorchRunner(run, model)


def export(spec, model: SpecModel, format: str, output: str, inputs: list[np.ndarray], verify: bool = True):
    """Write ``model`` as ONNX or TorchScript (atomic); ONNX is checked with onnxruntime when it is there."""
    from nnspec.backends.torch.exporter import export as write

    return write(spec, model, format, output, inputs, verify)
