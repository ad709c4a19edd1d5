"""Learned convolution filters, read from the backend-neutral weights file with numpy only.

The file keeps Keras's layout, ``<layer>/kernel`` shaped (kh, kw, in, out), whichever framework
trained the run, so filters look the same for torch and keras runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnspec.inspect.errors import InspectError


@dataclass
class Filters:
    """One conv layer's kernels as ``(filters, kh, kw, in)`` and how the grid shows them."""

    layer: str
    kernels: np.ndarray  # (out, kh, kw, in)
    bias: np.ndarray | None
    mode: str  # "gray" (one input channel), "rgb" (three) or "channels" (one cell per filter and input channel)
    channels_shown: int  # input channels drawn per filter in "channels" mode (1 otherwise)

    @property
    def cells(self) -> int:
        return len(self.kernels) * (self.channels_shown if self.mode == "channels" else 1)

    @property
    def shape(self) -> tuple[int, ...]:
        """Keras's kernel shape (kh, kw, in, out)."""
        out, kh, kw, cin = self.kernels.shape
        return (kh, kw, cin, out)


def read_filters(weights_path: str, layer: str, max_channels: int = 8) -> Filters:
    """The kernels of conv layer ``layer`` from a weights file."""
    from nnspec.backends.weights import WeightsFileError, read_weights

    try:
        weights = read_weights(weights_path)
    except WeightsFileError as exc:
        raise InspectError(str(exc)) from None
    key = f"{layer}/kernel"
    if key not in weights:
        raise InspectError(f"{weights_path} has no `{key}`: it was not saved from this spec")
    kernel = np.asarray(weights[key], dtype=np.float32)
    if kernel.ndim != 4:
        raise InspectError(f"`{key}` has shape {kernel.shape}; expected (kh, kw, in, out)")
    kernels = np.transpose(kernel, (3, 0, 1, 2))
    bias = weights.get(f"{layer}/bias")
    cin = kernels.shape[-1]
    mode = "gray" if cin == 1 else "rgb" if cin == 3 else "channels"
    shown = min(cin, max_channels) if mode == "channels" else 1
    return Filters(layer, kernels, None if bias is None else np.asarray(bias), mode, shown)


def cell_images(filters: Filters) -> list[tuple[np.ndarray, str]]:
    """The images of the grid, in order, with a label each.

    Gray cells keep their signed values (drawn with a diverging colour map around zero); RGB
    cells are scaled to [0, 1] per filter, 0.5 meaning a zero weight.
    """
    cells: list[tuple[np.ndarray, str]] = []
    for i, k in enumerate(filters.kernels):
        if filters.mode == "gray":
            cells.append((k[..., 0], f"{i}"))
        elif filters.mode == "rgb":
            peak = float(np.abs(k).max()) or 1.0
            cells.append((0.5 + 0.5 * k / peak, f"{i}"))
        else:
            for c in range(filters.channels_shown):
                cells.append((k[..., c], f"{i}:{c}"))
    return cells
