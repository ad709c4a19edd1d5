"""Plots of a run: learning curves, confusion matrix, predicted vs true (matplotlib, Agg, lazy)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from nnspec.fileio import atomic_write


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        from nnspec.errors import BackendMissing

        raise BackendMissing("plots need matplotlib, which is not installed: pip install 'nnspec[torch]' "
                             "(or 'nnspec[keras]'), or pip install matplotlib") from exc

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write(path, buf.getvalue())


@dataclass
class Panel:
    """One quantity of the learning curves: its series per split, and the best epoch to mark."""

    quantity: str  # loss, accuracy, angle_mae, ...
    series: dict[str, list[float | None]]  # "train" / "validation" -> one value per epoch
    best: tuple[int, float] | None = None  # (epoch, value) of the monitored series at the best epoch


def curve_panels(history: list[dict], best_epoch: int | None = None, monitor: str | None = None) -> list[Panel]:
    """One panel per quantity (loss, each head's loss, each metric), so scales never share an axis.

    The monitored quantity (``val_loss``, ``val_accuracy``, ...) gets a marker at ``best_epoch``.
    """
    if not history:
        return []
    keys = [k for k in history[0] if k not in ("epoch", "lr", "seconds") and not k.startswith("val_")]
    epochs = [int(row["epoch"]) for row in history]
    panels = []
    for key in keys:
        series = {"train": [_number(row.get(key)) for row in history]}
        if f"val_{key}" in history[0]:
            series["validation"] = [_number(row.get(f"val_{key}")) for row in history]
        best = None
        if best_epoch is not None and best_epoch in epochs and monitor in (key, f"val_{key}"):
            split = "validation" if monitor == f"val_{key}" else "train"
            value = series[split][epochs.index(best_epoch)]
            best = (best_epoch, value) if value is not None else None
        panels.append(Panel(key, series, best))
    return panels


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def curves(history: list[dict], path: str, title: str = "", best_epoch: int | None = None,
           monitor: str | None = None):
    """Learning curves: one panel per quantity, integer epochs, the best epoch marked.

    Returns the (closed) matplotlib figure, for inspection; None when there is no history.
    """
    panels = curve_panels(history, best_epoch, monitor)
    if not panels:
        return None
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    epochs = [int(row["epoch"]) for row in history]
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.4 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        for split, values in panel.series.items():
            ax.plot(epochs, values, marker="o", ms=3, ls="-" if split == "train" else "--", label=split)
        if panel.best is not None:
            epoch, value = panel.best
            ax.axvline(epoch, color="grey", lw=0.8, ls=":")
            ax.plot([epoch], [value], marker="*", ms=12, color="crimson", ls="none", label=f"best (epoch {epoch})")
        ax.set_title(panel.quantity.replace("_", " "), fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        if len(epochs) <= 12:
            ax.set_xticks(epochs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return fig


def confusion(matrix: np.ndarray, class_names: list[str], path: str, title: str = "") -> None:
    """Confusion matrix with counts; rows are true classes, columns predicted."""
    plt = _pyplot()
    k = len(matrix)
    size = max(4.5, 0.55 * k + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    names = list(class_names) if class_names and len(class_names) == k else [str(i) for i in range(k)]
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = matrix.max() if matrix.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if matrix[i, j] > top / 2 else "black")
    accuracy = np.trace(matrix) / max(1, matrix.sum())
    ax.set_title((title + "\n" if title else "") + f"test accuracy {accuracy:.2%}")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def predicted_vs_true(true: np.ndarray, predicted: np.ndarray, path: str, title: str = "") -> None:
    """Scatter of predictions against targets, with the ideal diagonal."""
    plt = _pyplot()
    true = np.asarray(true, dtype=np.float64).reshape(-1)
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(true, predicted, s=4, alpha=0.35)
    lo, hi = float(min(true.min(), predicted.min())), float(max(true.max(), predicted.max()))
    ax.plot([lo, hi], [lo, hi], color="black", lw=1, ls="--", label="ideal")
    mae = float(np.abs(true - predicted).mean())
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title((title + "\n" if title else "") + f"test MAE {mae:.4g}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
