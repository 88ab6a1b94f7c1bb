"""A run's pictures as images: captioned image grids, the confusion matrix, learning curves.

They are painted with PIL, captions and labels in Pillow's scalable font: a few milliseconds
each, where matplotlib needed ~0.1-0.2 s to lay out and rasterise their dozens of text labels
and ticks (a 3-epoch sweep job draws eight: five, and a grid after each epoch). The comparison
report's plots, drawn once per sweep, stay matplotlib's (mnistx.sweeps.report_plots).
Every function returns a PIL image; `png` encodes one for a file and TensorBoard alike.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Sequence
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

ZOOM = 4  # screen pixels per image pixel in the grids (28 px -> 112 px)
CAPTION = 20  # caption band above each grid image, screen pixels (multiples of ZOOM)
GAP = 8  # space between grid tiles
TITLE = 28  # title band above a grid
RED, BLACK, WHITE = (214, 39, 40), (0, 0, 0), (255, 255, 255)


@cache
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled scalable font (its bitmap font where Pillow lacks FreeType)."""
    return ImageFont.load_default(size=size)


@lru_cache(maxsize=4096)
def _glyphs(text: str, size: int, anchor: str) -> tuple[Image.Image, int, int]:
    """A text's coverage mask, rendered once, and its top-left corner relative to the anchor
    point. Rendering is most of a picture's cost (~0.07 ms a text, ~200 texts a test-end's
    pictures: captions, counts, labels), and the same texts recur in every job of a sweep."""
    f = font(size)
    left, top, right, bottom = (int(v) for v in f.getbbox(text, anchor=anchor))
    mask = Image.new("L", (max(right - left, 1), max(bottom - top, 1)), 0)
    ImageDraw.Draw(mask).text((-left, -top), text, fill=255, font=f, anchor=anchor)
    return mask, left, top


def write(
    image: Image.Image,
    xy: tuple[float, float],
    text: str,
    size: int,
    fill: tuple[int, int, int] = BLACK,
    anchor: str = "la",
) -> None:
    """`text` in the font of `size`, anchored at `xy` (rounded to a pixel) as PIL's
    ImageDraw.text anchors it, from the cached mask: the same pixels (tested)."""
    mask, left, top = _glyphs(text, size, anchor)
    x, y = round(xy[0]) + left, round(xy[1]) + top
    image.paste(fill, (x, y, x + mask.width, y + mask.height), mask)


def grid_boxes(n: int, cols: int, h: int, w: int) -> list[tuple[int, int, int, int]]:
    """Where `image_grid` puts each of `n` images (left, top, right, bottom, in screen
    pixels), below the title band; its caption sits in the CAPTION pixels just above."""
    cols = max(1, min(cols, n))
    gap, caption, title = GAP // ZOOM, CAPTION // ZOOM, TITLE // ZOOM
    boxes = []
    for i in range(n):
        r, k = divmod(i, cols)
        left, top = gap + k * (w + gap), title + r * (h + caption + gap) + caption
        boxes.append((left * ZOOM, top * ZOOM, (left + w) * ZOOM, (top + h) * ZOOM))
    return boxes


def image_grid(
    images: torch.Tensor,
    titles: Sequence[str],
    wrong: Sequence[bool] | None = None,
    mean: float = 0.0,
    std: float = 1.0,
    title: str = "",
    cols: int = 8,
) -> Image.Image:
    """Normalised images (N, C, H, W), each enlarged ZOOM times under its caption; the
    captions of wrong predictions in red. Laid out at the images' own scale and enlarged in
    one nearest-neighbour resize, then captioned."""
    n, (_, h, w) = len(images), images.shape[1:]  # 1 or 3 channels fill the RGB canvas
    cols = max(1, min(cols, n))
    rows = max(1, math.ceil(n / cols))
    gap, caption, title_band = GAP // ZOOM, CAPTION // ZOOM, TITLE // ZOOM
    width, height = gap + cols * (w + gap), title_band + rows * (h + caption + gap)
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    pixels = (images.detach().float().cpu() * std + mean).clamp(0, 1).mul(255).round()
    array = pixels.to(torch.uint8).permute(0, 2, 3, 1).numpy()  # (N, H, W, C)
    for i, (left, top, _, _) in enumerate(grid_boxes(n, cols, h, w)):
        canvas[top // ZOOM : top // ZOOM + h, left // ZOOM : left // ZOOM + w] = array[i]
    image = Image.fromarray(canvas, "RGB")
    image = image.resize((width * ZOOM, height * ZOOM), Image.Resampling.NEAREST)
    for i, (left, top, right, _) in enumerate(grid_boxes(n, cols, h, w)):
        red = wrong is not None and wrong[i]
        write(image, ((left + right) / 2, top - 3), str(titles[i]), 12, RED if red else BLACK, "md")
    if title:
        write(image, (image.width / 2, TITLE / 2 + 2), title, 15, BLACK, "mm")
    return image


_LO, _HI = (247, 251, 255), (8, 48, 107)  # Blues' ends


def _blues(value: float) -> tuple[int, int, int]:
    """White (0) to dark blue (1), as matplotlib's Blues map runs."""
    v = min(max(value, 0.0), 1.0)
    return tuple(round(a + (b - a) * v) for a, b in zip(_LO, _HI, strict=True))  # type: ignore[return-value]


def _blues_scale(height: int, width: int) -> Image.Image:
    """The colour scale: `_blues` from 1 at the top row to 0 at the bottom, in one array."""
    v = 1 - np.arange(height) / max(height - 1, 1)
    lo, hi = np.array(_LO, float), np.array(_HI, float)
    rows = np.round(lo + (hi - lo) * v[:, None]).astype(np.uint8)  # (height, 3)
    return Image.fromarray(np.repeat(rows[:, None, :], width, axis=1), "RGB")


@cache
def _vertical_text(text: str, size: int) -> Image.Image:
    """Black text on white, turned to read upwards (cached: callers only paste it)."""
    f = font(size)
    left, top, right, bottom = f.getbbox(text)
    label = Image.new("RGB", (int(right - left) + 2, int(bottom - top) + 2), WHITE)
    ImageDraw.Draw(label).text((1 - left, 1 - top), text, fill=BLACK, font=f)
    return label.rotate(90, expand=True)


def confusion_figure(confmat: torch.Tensor, class_names: Sequence[str]) -> Image.Image:
    """Confusion matrix (true class per row): each cell annotated with its count of images,
    coloured by its fraction of the true class (fractions read 0.00 off the diagonal of a
    good model; a count of 3 does not), with a colour scale."""
    counts = confmat.detach().cpu()
    normalised = (counts.float() / counts.sum(1, keepdim=True).clamp(min=1)).tolist()
    annotated = counts.long().tolist()
    labels = [str(c).split(" - ")[0] for c in class_names]
    k = len(labels)
    cell = max(28, min(56, 560 // max(k, 1)))
    label_font, cell_size = font(13), max(9, min(14, cell // 4))
    label_w = max(int(label_font.getlength(s)) for s in labels) if labels else 0
    left, top = 30 + label_w + 10, 40
    bottom_room = 10 + label_w + 30
    bar_x = left + k * cell + 20
    width, height = bar_x + 20 + 45, top + k * cell + bottom_room
    img = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(img)
    title = "Confusion matrix (images; colour: fraction of each true class)"
    write(img, (left + k * cell / 2, top / 2), title, 15, BLACK, "mm")
    for t in range(k):
        for p in range(k):
            v = normalised[t][p]
            x0, y0 = left + p * cell, top + t * cell
            draw.rectangle((x0, y0, x0 + cell - 1, y0 + cell - 1), fill=_blues(v))
            count, ink = str(annotated[t][p]), WHITE if v > 0.5 else BLACK
            write(img, (x0 + cell / 2, y0 + cell / 2), count, cell_size, ink, "mm")
    for i, name in enumerate(labels):  # true classes left of the rows, predicted below
        write(img, (left - 6, top + i * cell + cell / 2), name, 13, BLACK, "rm")
        rotated = _vertical_text(name, 13)
        img.paste(rotated, (left + i * cell + (cell - rotated.width) // 2, top + k * cell + 6))
    write(img, (left + k * cell / 2, height - 14), "predicted", 14, BLACK, "mm")
    axis = _vertical_text("true", 14)
    img.paste(axis, (6, top + (k * cell - axis.height) // 2))
    span = k * cell
    img.paste(_blues_scale(span, 15), (bar_x, top))  # the colour scale, 1 at the top
    for v in (0.0, 0.5, 1.0):
        y = top + round((1 - v) * (span - 1))
        write(img, (bar_x + 18, y), f"{v:.1f}", 11, BLACK, "lm")
    return img


def _nice_step(span: float, count: int) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about `count` ticks."""
    raw = span / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def _panel(
    img: Image.Image, box: tuple[int, int, int, int], series: dict[str, list[float]], ylabel: str
) -> None:
    """One line chart (epochs on x) drawn into `box` of the image: axes, ticks, grid, the
    series with markers, a legend."""
    draw = ImageDraw.Draw(img)
    left, top, right, bottom = box
    x0, y0, x1, y1 = left + 62, top + 10, right - 10, bottom - 42  # the plotting area
    values = [v for ys in series.values() for v in ys]
    epochs = max(len(ys) for ys in series.values())
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.06 or max(abs(hi) * 0.05, 0.01)
    lo, hi = lo - pad, hi + pad
    step = _nice_step(hi - lo, 5)
    decimals = len(f"{step:.6f}".rstrip("0").partition(".")[2])  # as many as the step has

    def px(epoch: float, value: float) -> tuple[float, float]:
        x = x0 + (x1 - x0) * ((epoch - 1) / max(epochs - 1, 1) if epochs > 1 else 0.5)
        return x, y1 - (y1 - y0) * (value - lo) / (hi - lo)

    grid = (225, 225, 225)
    tick = math.ceil(lo / step) * step
    while tick <= hi + 1e-12:
        _, y = px(1, tick)
        draw.line((x0, y, x1, y), fill=grid)
        write(img, (x0 - 6, y), f"{tick:.{decimals}f}", 11, BLACK, "rm")
        tick += step
    every = max(1, math.ceil(_nice_step(max(epochs - 1, 1), 8)))
    for epoch in range(1, epochs + 1):
        if (epoch - 1) % every == 0 or epoch == epochs and epochs <= 12:
            x, _ = px(epoch, lo)
            draw.line((x, y0, x, y1), fill=grid)
            write(img, (x, y1 + 5), str(epoch), 11, BLACK, "mt")
    draw.rectangle((x0, y0, x1, y1), outline=BLACK)
    write(img, ((x0 + x1) / 2, bottom - 4), "epoch", 13, BLACK, "md")
    label = _vertical_text(ylabel, 13)
    img.paste(label, (left + 4, int((y0 + y1 - label.height) / 2)))
    colours = {"train": (31, 119, 180), "val": (255, 127, 14)}  # matplotlib's first two
    for name, ys in series.items():
        colour = colours.get(name, BLACK)
        points = [px(i + 1, v) for i, v in enumerate(ys)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2, joint="curve")
        for x, y in points:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
    # The legend in the corner (top or bottom right) further from the curves' last points.
    last = [px(len(ys), ys[-1])[1] for ys in series.values()]
    legend_top = y1 - 8 - 18 * len(series) if min(last) < (y0 + y1) / 2 else y0 + 8
    for i, name in enumerate(series):
        y = legend_top + 9 + 18 * i
        draw.line((x1 - 70, y, x1 - 50, y), fill=colours.get(name, BLACK), width=2)
        write(img, (x1 - 44, y), name, 11, BLACK, "lm")


def curves_figure(history: dict[str, list[float]]) -> Image.Image:
    """Accuracy and loss per epoch, train and validation, side by side."""
    img = Image.new("RGB", (1000, 400), WHITE)
    for i, (name, label) in enumerate((("acc", "accuracy"), ("loss", "loss"))):
        series = {
            split: list(history[f"{split}/{name}"])
            for split in ("train", "val")
            if history.get(f"{split}/{name}")
        }
        if series:
            _panel(img, (i * 500, 0, (i + 1) * 500, 400), series, label)
    return img


def png(image: Image.Image) -> bytes:
    """PNG bytes, written to a file and sent to TensorBoard alike.

    RGB and grey images are written here, unfiltered rows deflated at level 1: PIL spends
    most of its ~12 ms per picture choosing a filter for every row (~10 ms even at level 0),
    these take 5-7 ms, and any PNG reader (PIL's included: tested) reads the same pixels."""
    colour_type = {"RGB": 2, "L": 0}.get(image.mode)
    if colour_type is None:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()
    width, height = image.size
    rows = np.frombuffer(image.tobytes(), np.uint8).reshape(height, -1)
    unfiltered = np.hstack([np.zeros((height, 1), np.uint8), rows])  # filter type 0 per row

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", header),
            chunk(b"IDAT", zlib.compress(unfiltered.tobytes(), 1)),
            chunk(b"IEND", b""),
        )
    )


def save(image: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png(image))
    return path
