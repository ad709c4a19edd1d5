"""Plots of a run: learning curves, confusion matrix, predicted vs true (matplotlib, Agg, lazy)."""

from __future__ import annotations

import io

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


def curves(history: list[dict], path: str, title: str = "") -> None:
    """Training vs validation loss, and accuracy or MAE, per epoch (side by side)."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    keys = [k for k in history[0] if k not in ("epoch", "lr", "seconds") and not k.startswith("val_")] if history else []
    losses = [k for k in keys if k.endswith("loss")]
    others = [k for k in keys if not k.endswith("loss")]
    panels = [("loss", losses)] + ([("metric", others)] if others else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (label, names) in zip(axes[0], panels, strict=True):
        for name in names:
            ax.plot(epochs, [row.get(name) for row in history], marker="o", ms=3, label=f"train {name}")
            val = f"val_{name}"
            if history and val in history[0]:
                ax.plot(epochs, [row.get(val) for row in history], marker="o", ms=3, ls="--", label=f"validation {name}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label if label == "loss" else ", ".join(names))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


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
