"""Any photo or scan of one digit, turned into an MNIST-style 28x28 input.

MNIST's convention (LeCun et al.): grayscale, white digit on black, the digit's bounding box
scaled to fit 20x20 keeping its aspect ratio, then placed in 28x28 so that its centre of mass
is the centre. Scans are usually dark ink on light paper, so light backgrounds are inverted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from mnistx.errors import UserError


def load_gray(path: Path) -> np.ndarray:
    """Pixels in [0, 1], transparency flattened onto white."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("RGBA", "LA", "P"):
                img = img.convert("RGBA")
                white = Image.new("RGBA", img.size, (255, 255, 255, 255))
                img = Image.alpha_composite(white, img)
            gray = ImageOps.grayscale(img)
    except UnidentifiedImageError:
        raise UserError(f"{path}: not an image PIL can read (PNG, JPEG, BMP, ...)") from None
    except OSError as e:
        raise UserError(f"{path}: unreadable image ({e})") from None
    if gray.width < 2 or gray.height < 2:
        raise UserError(f"{path}: image is {gray.width}x{gray.height} pixels; too small")
    return np.asarray(gray, dtype=np.float32) / 255.0


def to_mnist(pixels: np.ndarray, name: str = "image") -> np.ndarray:
    """A 28x28 array in [0, 1], white digit on black, MNIST-style size and centring."""
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    background = float(np.median(border))
    if background > 0.5:  # dark digit on light paper
        pixels, background = 1.0 - pixels, 1.0 - background
    ink = np.clip(pixels - background, 0, None)
    if ink.max() < 0.1:
        raise UserError(f"{name}: no digit found (the image is blank or has no contrast)")
    ink /= ink.max()
    rows, cols = np.nonzero(ink > 0.2)
    ink = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]

    h, w = ink.shape
    scale = 20.0 / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    box = np.asarray(Image.fromarray(ink).resize(size, Image.Resampling.LANCZOS))
    box = np.clip(box, 0, 1)

    out = np.zeros((28, 28), dtype=np.float32)
    total = box.sum()
    ys, xs = np.indices(box.shape)
    cy, cx = (ys * box).sum() / total, (xs * box).sum() / total
    top, left = round(14 - cy), round(14 - cx)
    # Paste with clipping: the shift can push a wide or tall box slightly over the edge.
    t0, l0 = max(0, top), max(0, left)
    t1, l1 = min(28, top + box.shape[0]), min(28, left + box.shape[1])
    out[t0:t1, l0:l1] = box[t0 - top : t1 - top, l0 - left : l1 - left]
    return out


def load_digit(path: Path, mean: float, std: float) -> torch.Tensor:
    """(1, 28, 28) tensor normalised like the training data."""
    return torch.from_numpy(to_mnist(load_gray(path), str(path))).sub(mean).div(std)[None]
