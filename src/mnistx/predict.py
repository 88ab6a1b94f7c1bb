"""Predict digits in your own images: `python -m mnistx.predict run=<run dir> images=<...>`.

    python -m mnistx.predict run=outputs/2026-11-23/14-02-11 images=my_digits/
    python -m mnistx.predict run=... images='scans/*.jpg' --json
    python -m mnistx.predict ckpt=.../checkpoints/last.ckpt images=seven.png --show sheet.png

`images` is a file, a folder (its PNG/JPEG/BMP/GIF/TIFF/WebP files) or a glob. Each image is
converted to MNIST's convention (mnistx.data.digit_image) and normalised with the run's own
constants. A file that cannot be used gets its own error line; the others are still
predicted, and the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mnistx.errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def image_paths(spec: str) -> list[Path]:
    """The image files `spec` names: regular files only (a FIFO or device would block the
    read forever), each file once however many symlinked paths lead to it."""
    path = Path(spec)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    elif path.exists():
        if not path.is_file():
            raise UserError(
                f"images={spec} is not a regular file (a pipe, socket or device), so it cannot "
                "be read as an image. Give an image file, a folder of them, or a glob."
            )
        found = [path]
    else:
        found = sorted(Path(p) for p in glob.glob(spec, recursive=True))
    once: dict[Path, Path] = {}
    for p in found:
        if p.is_file():  # follows symlinks; False for pipes, sockets and devices
            once.setdefault(p.resolve(), p)
    found = list(once.values())
    if not found:
        raise UserError(
            f"images={spec} matches no image files. Give a file, a folder of PNG/JPEG/BMP "
            "files, or a quoted glob such as images='digits/*.png'."
        )
    return found


def _parse(settings: Sequence[str]) -> dict[str, str]:
    from mnistx.eval import parse_settings

    images = [s for s in settings if s.startswith("images=")]
    if len(images) != 1 or images[0] == "images=":
        raise UserError(
            "Say which images to read, once: images=<file, folder or glob>, e.g. "
            "python -m mnistx.predict run=outputs/2026-11-23/14-02-11 images=digits/"
        )
    parsed = parse_settings([s for s in settings if not s.startswith("images=")])
    parsed["images"] = images[0].split("=", 1)[1]
    return parsed


def predict(
    images: str,
    run: str | None = None,
    ckpt: str | None = None,
    data_dir: str | None = None,
    show: str | None = None,
    overwrite: bool = False,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Predictions for every usable image, and an error line for each unusable one."""
    import torch

    from mnistx.data.digit_image import load_digit
    from mnistx.inspection.inference import load_network, predict_probs
    from mnistx.runs.guard import check_file, expand
    from mnistx.runs.saved import locate, run_config

    paths = image_paths(images)
    run_dir, ckpt_path = locate(run, ckpt)
    if show is not None:
        check_file(expand(show, "--show"), "--show", overwrite)
    data = run_config(run_dir, data_dir).data
    network = load_network(ckpt_path)

    inputs, used, errors = [], [], []
    for path in paths:
        try:
            inputs.append(load_digit(path, data.mean, data.std))
            used.append(path)
        except UserError as e:
            errors.append(str(e))
    results: list[dict[str, Any]] = []
    if inputs:
        x = torch.stack(inputs)
        probs = predict_probs(network, x)
        for path, p in zip(used, probs, strict=True):
            top = p.topk(3)
            results.append(
                {
                    "image": str(path),
                    "prediction": int(top.indices[0]),
                    "top3": [
                        {"class": int(c), "probability": round(float(v), 4)}
                        for v, c in zip(top.values, top.indices, strict=True)
                    ],
                }
            )
        if show:
            from mnistx.inspection import drawing

            titles = [f"{r['prediction']} ({r['top3'][0]['probability']:.2f})" for r in results]
            fig = drawing.image_grid(
                x,
                titles,
                None,
                data.mean,
                data.std,
                "Inputs as the model saw them: prediction (probability)",
            )
            drawing.save(fig, expand(show, "--show"))
    return results, errors


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mnistx.predict",
        description="Predict the digit in each image with a trained run's model.",
        epilog="Example: python -m mnistx.predict run=outputs/2026-11-23/14-02-11 images=digits/",
    )
    parser.add_argument(
        "settings", nargs="*", help="run=<folder> or ckpt=<file>, and images=<file, folder or glob>"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a list")
    parser.add_argument("--show", metavar="PNG", help="write a sheet of the model's inputs")
    parser.add_argument(
        "--overwrite", action="store_true", help="let --show replace a file (never a run's)"
    )
    args = parser.parse_args(argv)
    try:
        results, errors = predict(**_parse(args.settings), show=args.show, overwrite=args.overwrite)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"predictions": results, "errors": errors}, indent=2))
    else:
        for r in results:
            top = ", ".join(f"{t['class']}: {t['probability']:.3f}" for t in r["top3"])
            print(f"{r['image']}: {r['prediction']}   (top 3: {top})")
        if args.show and results:
            print(f"Inputs as the model saw them: {args.show}")
    for message in errors:
        print(f"error: {message}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    from mnistx.fast_exit import exiting_fast

    with exiting_fast():
        sys.exit(main())
