"""Any photo or scan of one digit, turned into an MNIST-style 28x28 input.

MNIST's convention (LeCun et al.): grayscale, white digit on black, the digit's bounding box
scaled to fit 20x20 keeping its aspect ratio, then placed in 28x28 so that its centre of mass
is the centre. Scans are usually dark ink on light paper, so light backgrounds are inverted.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from mnistx.errors import UserError

# Images over this many pixels are refused from their header, before any decoding, so a small
# file that decodes to a huge image (a decompression bomb) never takes the memory it asks for.
MAX_PIXELS = 4096 * 4096
# Larger images are shrunk to this long side first: the digit ends up 20x20 pixels anyway.
WORK_SIZE = 1024


def load_gray(source: Path | bytes, name: str | None = None) -> np.ndarray:
    """Pixels in [0, 1] of an image file or its bytes, transparency flattened onto white."""
    name = name or str(source if isinstance(source, Path) else "image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
                width, height = img.size
                if width * height > MAX_PIXELS:
                    raise _too_large(name, width, height)
                img.draft("L", (WORK_SIZE, WORK_SIZE))  # JPEG: decode at a reduced scale
                img.load()
                img = ImageOps.exif_transpose(img)  # a phone photo taken sideways stands up
                if img.mode in ("RGBA", "LA", "P", "PA"):
                    img = img.convert("RGBA")
                    white = Image.new("RGBA", img.size, (255, 255, 255, 255))
                    img = Image.alpha_composite(white, img)
                gray = ImageOps.grayscale(img)
    except UnidentifiedImageError:
        raise UserError(f"{name}: not an image PIL can read (PNG, JPEG, BMP, ...)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large(name, None, None) from None
    except OSError as e:
        raise UserError(f"{name}: unreadable image ({e})") from None
    if gray.width < 2 or gray.height < 2:
        raise UserError(f"{name}: image is {gray.width}x{gray.height} pixels; too small")
    if max(gray.size) > WORK_SIZE:
        gray.thumbnail((WORK_SIZE, WORK_SIZE), Image.Resampling.BOX)
    return np.asarray(gray, dtype=np.float32) / 255.0


class ImageTooLarge(UserError):
    """An image over MAX_PIXELS: refused before it is decoded."""


def _too_large(name: str, width: int | None, height: int | None) -> ImageTooLarge:
    size = f"{width}x{height} pixels" if width and height else "over PIL's pixel limit"
    return ImageTooLarge(
        f"{name}: the image is {size}, more than the {MAX_PIXELS // 1_000_000} megapixels "
        "(4096x4096) read here. Crop or shrink it to the digit and try again."
    )


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
    return normalised(to_mnist(load_gray(path), str(path)), mean, std)


def normalised(pixels: np.ndarray, mean: float, std: float) -> torch.Tensor:
    """A 28x28 input in [0, 1] as a (1, 28, 28) tensor normalised like the training data."""
    return torch.from_numpy(pixels).sub(mean).div(std)[None]
