"""The pictures, drawn with matplotlib's object API (no pyplot state, Agg canvas) and written atomically.

Each function takes plain numpy arrays and a path, writes one PNG, and returns the number of
cells (small images) it drew.
"""

from __future__ import annotations

import io
import math

import numpy as np

from nnspec.fileio import atomic_write
from nnspec.inspect.filters import Filters, cell_images

DPI = 110


def _figure(width: float, height: float):
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        from nnspec.errors import BackendMissing

        raise BackendMissing("nnspec inspect draws with matplotlib, which is not installed: "
                             "pip install 'nnspec[torch]' (or 'nnspec[keras]'), or pip install matplotlib") from exc
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.set(w_pad=0.02, h_pad=0.02, hspace=0.02, wspace=0.02)  # type: ignore[call-arg]
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white", bbox_inches="tight", pad_inches=0.08)
    atomic_write(path, buf.getvalue())


def _bare(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def display_image(x: np.ndarray) -> tuple[np.ndarray, str | None]:
    """A model input (H, W, C) as something imshow draws: gray for one channel, RGB for three."""
    x = np.asarray(x, dtype=np.float32)
    lo, hi = float(x.min()), float(x.max())
    scaled = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    if x.shape[-1] == 3:
        return scaled, None
    return scaled[..., 0], "gray"


def filter_grid(filters: Filters, path: str, title: str, max_filters: int = 64) -> int:
    """The learned kernels of one conv layer, one cell per filter (and input channel when there are many)."""
    cells = cell_images(filters)
    per_filter = filters.channels_shown if filters.mode == "channels" else 1
    shown = min(len(filters.kernels), max_filters)
    cells = cells[: shown * per_filter]
    ncols = per_filter if per_filter > 1 else min(8, len(cells))
    nrows = math.ceil(len(cells) / ncols)
    kh, kw = filters.kernels.shape[1:3]
    annotate = kh * kw <= 25 and len(cells) <= 64
    size = 1.15 if annotate else 0.9
    fig = _figure(max(4.0, ncols * size), nrows * (size + 0.15) + 0.5)
    grid = fig.add_gridspec(nrows, ncols)
    for i, (image, label) in enumerate(cells):
        ax = fig.add_subplot(grid[i // ncols, i % ncols])
        _bare(ax)
        if image.ndim == 3:
            ax.imshow(image, interpolation="nearest")
        else:
            peak = float(np.abs(image).max()) or 1.0
            ax.imshow(image, cmap="RdBu_r", vmin=-peak, vmax=peak, interpolation="nearest")
            if annotate:
                for (r, c), v in np.ndenumerate(image):
                    ax.text(
                        c,
                        r,
                        f"{v:.2f}",
                        ha="center",
                        va="center",
                        fontsize=max(4.5, 9 - max(kh, kw)),
                        color="white" if abs(v) > 0.6 * peak else "black",
                    )
        ax.set_title(f"#{label}", fontsize=8, pad=2)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)
    return len(cells)


def feature_map_grid(
    images: np.ndarray, maps: np.ndarray, labels: list[str], path: str, title: str, max_channels: int = 16
) -> int:
    """Rows: test images; first column the input, then one response map per channel (each scaled alone)."""
    n, channels = len(images), min(maps.shape[-1], max_channels)
    ncols = channels + 1
    size = 1.05
    fig = _figure(ncols * size + 0.3, n * (size + 0.1) + 0.5)
    grid = fig.add_gridspec(n, ncols)
    for r in range(n):
        ax = fig.add_subplot(grid[r, 0])
        _bare(ax)
        img, cmap = display_image(images[r])
        ax.imshow(img, cmap=cmap, interpolation="nearest")
        ax.set_ylabel(labels[r], fontsize=7)
        for c in range(channels):
            ax = fig.add_subplot(grid[r, c + 1])
            _bare(ax)
            ax.imshow(maps[r, ..., c], cmap="viridis", interpolation="nearest")
            if r == 0:
                ax.set_title(f"ch {c}", fontsize=7, pad=2)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)
    return n * (channels + 1)


def misclassified_grid(
    images: np.ndarray, true: list[str], predicted: list[str], confidence: np.ndarray, path: str, title: str
) -> int:
    """The misclassified test images, each with its true class and the predicted one (and its probability)."""
    n = len(images)
    ncols = max(1, min(6, n))
    nrows = max(1, math.ceil(n / ncols))
    fig = _figure(ncols * 1.6, nrows * 1.95 + 0.4)
    grid = fig.add_gridspec(nrows, ncols)
    for i in range(n):
        ax = fig.add_subplot(grid[i // ncols, i % ncols])
        _bare(ax)
        img, cmap = display_image(images[i])
        ax.imshow(img, cmap=cmap, interpolation="nearest")
        ax.set_title(f"true: {true[i]}", fontsize=7.5, pad=2, color="#1a7f37")
        ax.set_xlabel(f"pred: {predicted[i]} ({confidence[i]:.0%})", fontsize=7.5, labelpad=2, color="#c0392b")
    if n == 0:
        ax = fig.add_subplot(grid[0, 0])
        _bare(ax)
        ax.text(0.5, 0.5, "no mistakes", ha="center", va="center")
    fig.suptitle(title, fontsize=9)
    _save(fig, path)
    return n


def grad_cam_grid(images: np.ndarray, cams: np.ndarray, labels: list[str], path: str, title: str) -> int:
    """Rows: test images; columns: the input, the Grad-CAM heat map, the heat map over the input."""
    n = len(images)
    fig = _figure(3 * 1.7 + 1.6, n * 1.85 + 0.6)
    grid = fig.add_gridspec(n, 3)
    heat = None
    for r in range(n):
        img, cmap = display_image(images[r])
        for c, what in enumerate(("input", "Grad-CAM", "overlay")):
            ax = fig.add_subplot(grid[r, c])
            if c == 0:
                ax.set_xlabel(labels[r], fontsize=7, labelpad=2)
            _bare(ax)
            if what != "Grad-CAM":
                ax.imshow(img, cmap=cmap, interpolation="nearest")
            if what != "input":
                shown = ax.imshow(
                    cams[r],
                    cmap="jet",
                    vmin=0.0,
                    vmax=1.0,
                    alpha=1.0 if what == "Grad-CAM" else 0.45,
                    interpolation="bilinear",
                )
                heat = shown if what == "Grad-CAM" else heat
                if what == "Grad-CAM" and not cams[r].any():
                    ax.text(
                        0.5,
                        0.5,
                        "no positive\nevidence",
                        transform=ax.transAxes,
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white",
                    )
            if r == 0:
                ax.set_title(what, fontsize=8, pad=2)
    if heat is not None:
        bar = fig.colorbar(heat, ax=fig.axes, shrink=min(1.0, 3.0 / max(n, 1)), aspect=25, pad=0.02)
        bar.ax.tick_params(labelsize=7)
        bar.set_label("importance for the class (0-1)", fontsize=7)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)
    return n * 3
