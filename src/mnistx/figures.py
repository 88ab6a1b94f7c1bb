"""A run's pictures as matplotlib figures: image grids, confusion matrix, learning curves.

Saved as PNG files and sent to TensorBoard's Images tab (SummaryWriter.add_figure) alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def image_grid(
    images: torch.Tensor,
    titles: Sequence[str],
    wrong: Sequence[bool] | None = None,
    mean: float = 0.0,
    std: float = 1.0,
    title: str = "",
    cols: int = 8,
) -> Figure:
    """Normalised images (N, C, H, W) with a caption each; wrong ones captioned in red.

    One tiled image in one Axes, captions as text: a subplot per image (and tight_layout)
    took ~1.5 s per grid, as long as a small MLP's whole epoch, and the misclassified grid is
    drawn after every epoch."""
    n, (c, h, w) = len(images), images.shape[1:]
    cols = max(1, min(cols, n))
    rows = max(1, math.ceil(n / cols))
    pad_x, pad_top = max(2, w // 7), max(2, h // 7) + 10  # room for a caption above each
    pixels = (images.detach().float().cpu() * std + mean).clamp(0, 1)
    tile_h, tile_w = h + pad_top, w + pad_x
    canvas = torch.ones(c, rows * tile_h, cols * tile_w)
    for i in range(n):
        r, k = divmod(i, cols)
        top, left = r * tile_h + pad_top, k * tile_w + pad_x // 2
        canvas[:, top : top + h, left : left + w] = pixels[i]
    scale = 1.4 / tile_w  # inches per pixel: 1.4 in per tile, as wide as before
    fig = plt.figure(figsize=(cols * tile_w * scale, rows * tile_h * scale + (0.4 if title else 0)))
    ax = fig.add_axes((0, 0, 1, rows * tile_h * scale / fig.get_figheight()))
    ax.imshow(canvas[0] if c == 1 else canvas.permute(1, 2, 0), cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    ax.axis("off")
    for i in range(n):
        r, k = divmod(i, cols)
        red = wrong is not None and wrong[i]
        ax.text(k * tile_w + tile_w / 2, r * tile_h + pad_top - 2, titles[i], fontsize=8,
                ha="center", va="bottom", color="red" if red else "black")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def confusion_figure(confmat: torch.Tensor, class_names: Sequence[str]) -> Figure:
    """Row-normalised confusion matrix (true class per row), each cell annotated."""
    from torchmetrics.utilities.plot import plot_confusion_matrix

    counts = confmat.detach().float().cpu()
    normalised = counts / counts.sum(1, keepdim=True).clamp(min=1)
    labels = [str(c).split(" - ")[0] for c in class_names]
    fig, ax = plot_confusion_matrix(normalised.round(decimals=2), add_text=True, labels=labels)
    fig.set_size_inches(8, 7)
    ax.set_title("Confusion matrix (fraction of each true class)")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return fig


def curves_figure(history: dict[str, list[float]]) -> Figure:
    """Accuracy and loss per epoch, train and validation."""
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for split in ("train", "val"):
        for ax, name in ((acc_ax, "acc"), (loss_ax, "loss")):
            values = history.get(f"{split}/{name}", [])
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=split)
    for ax, name in ((acc_ax, "accuracy"), (loss_ax, "loss")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def to_png(fig: Figure) -> tuple[bytes, int, int]:
    """The figure drawn once, as PNG bytes (with its height and width in pixels), and closed:
    a run's pictures go to a file and to TensorBoard from the same drawing."""
    import io

    import numpy as np
    from PIL import Image

    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    plt.close(fig)
    buffer = io.BytesIO()
    Image.fromarray(rgba[..., :3]).save(buffer, format="PNG")
    return buffer.getvalue(), rgba.shape[0], rgba.shape[1]


def save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
