"""Export a trained run's network for use outside mnistx: `python -m mnistx.export run=<run>`.

    python -m mnistx.export run=outputs/2026-11-23/14-02-11                 # ONNX
    python -m mnistx.export run=outputs/2026-11-23/14-02-11 format=torchscript
    python -m mnistx.export ckpt=.../checkpoints/last.ckpt --out deploy/

The exported model takes images as the dataset stores them, float32 [N, C, H, W] with pixel
values 0-255 (MNIST: [N, 1, 28, 28], a white digit on black), and returns the probability of
each class [N, classes]: the run's own normalisation (data.mean, data.std) and the softmax are
inside it, so a 28x28 image goes straight in. The network is read from the checkpoint as
data (mnistx.runs.saved), never executed from it. Written with a README.md of the input and
output into <run>/export/<checkpoint name>-<format>/ (or --out), never over a run's own files.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistx.errors import UserError, exit_status

if TYPE_CHECKING:
    from omegaconf import DictConfig

FORMATS = {"onnx": "model.onnx", "torchscript": "model.pt"}
EXAMPLE = "python -m mnistx.export run=outputs/2026-11-23/14-02-11 format=onnx"


def parse_settings(settings: Sequence[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or key not in ("run", "ckpt", "format") or not value:
            raise UserError(
                f"Cannot read {item!r}: expected run=<run folder>, ckpt=<checkpoint file> or "
                f"format=onnx|torchscript, e.g. {EXAMPLE}"
            )
        parsed[key] = value
    if "run" not in parsed and "ckpt" not in parsed:
        raise UserError(
            "Say which run to export: run=<run folder> (its best checkpoint) or "
            f"ckpt=<checkpoint file>, e.g. {EXAMPLE}"
        )
    if parsed.get("format", "onnx") not in FORMATS:
        raise UserError(
            f"format={parsed['format']} is not an export format: use format=onnx (for "
            f"onnxruntime and most serving tools) or format=torchscript. Example: {EXAMPLE}"
        )
    return parsed


def packaged(net: Any, mean: float, std: float) -> Any:
    """The network with the run's input normalisation before it and a softmax after."""
    import torch

    class Packaged(torch.nn.Module):
        mean: torch.Tensor
        std: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            self.net: torch.nn.Module = net
            self.register_buffer("mean", torch.tensor(float(mean)))
            self.register_buffer("std", torch.tensor(float(std)))

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            logits: torch.Tensor = self.net((images / 255.0 - self.mean) / self.std)
            return logits.softmax(-1)

    return Packaged().eval()


def export(
    run: str | None = None,
    ckpt: str | None = None,
    format: str = "onnx",
    out: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the packaged network and its README; returns the model file."""
    import torch

    from mnistx.inspection.inference import load_network
    from mnistx.runs.guard import check_folder, expand, make_folder
    from mnistx.runs.layout import EXPORT
    from mnistx.runs.records import write_text
    from mnistx.runs.saved import locate, run_config

    run_dir, ckpt_path = locate(run, ckpt)
    cfg = run_config(run_dir, None)
    writes = (FORMATS[format], "README.md")
    if out is None:  # the run's own export of this checkpoint, made again when asked
        out_dir = run_dir / EXPORT / f"{ckpt_path.stem}-{format}"
        check_folder(out_dir, "The export folder", writes, own=run_dir)
    else:
        out_dir = expand(out, "--out")
        check_folder(out_dir, "--out", writes, overwrite=overwrite)
    model = packaged(load_network(ckpt_path), cfg.data.mean, cfg.data.std)  # checked first
    make_folder(out_dir, "--out")
    shape = (cfg.model.get("in_channels", 1), cfg.model.get("image_size", 28))
    example = torch.full((2, shape[0], shape[1], shape[1]), 128.0)
    path = out_dir / FORMATS[format]
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # whole, or not at all
    try:
        with torch.no_grad():
            (_onnx if format == "onnx" else _torchscript)(model, example, staged)
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
    classes = int(cfg.model.num_classes)
    write_text(out_dir / "README.md", _readme(path.name, format, shape, classes, cfg, ckpt_path))
    print(f"Exported {ckpt_path} as {format}: {path} (input and output: {out_dir / 'README.md'})")
    return path


def _onnx(model: Any, example: Any, path: Path) -> None:
    import importlib.util

    import torch

    missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(
            f"format=onnx needs {' and '.join(missing)} (PyTorch's ONNX exporter): "
            "pip install 'mnistx[export]', or export with format=torchscript."
        )

    batch = torch.export.Dim("batch", min=1)
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["images"],
        output_names=["probabilities"],
        dynamic_shapes={"images": {0: batch}},
        dynamo=True,
        external_data=False,  # one file: the weights inside (a small network)
        verbose=False,
    )


def _torchscript(model: Any, example: Any, path: Path) -> None:
    import torch

    with warnings.catch_warnings():  # said in the export's README, once, not per call
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.trace", category=Warning)
        torch.jit.trace(model, example).save(str(path))  # type: ignore[no-untyped-call]


def _readme(
    name: str, fmt: str, shape: tuple[int, int], classes: int, cfg: DictConfig, ckpt: Path
) -> str:
    c, size = shape
    load = {
        "onnx": (
            "import onnxruntime, numpy as np\n"
            f'session = onnxruntime.InferenceSession("{name}")\n'
            f"images = np.zeros((1, {c}, {size}, {size}), np.float32)  # pixel values 0-255\n"
            'probabilities = session.run(["probabilities"], {"images": images})[0]'
        ),
        "torchscript": (
            "import torch\n"
            f'model = torch.jit.load("{name}")\n'
            f"images = torch.zeros(1, {c}, {size}, {size})  # pixel values 0-255\n"
            "probabilities = model(images)\n"
            "# PyTorch deprecates TorchScript (torch.jit); format=onnx is the lasting choice."
        ),
    }[fmt]
    return (
        f"# {name}: a trained mnistx network ({fmt})\n\n"
        f"From `{ckpt}`.\n\n"
        f"- **Input** `images`: float32 `[N, {c}, {size}, {size}]`, pixel values 0-255 as the "
        f"dataset stores them (`{cfg.data.get('dataset')}`: for MNIST a white digit on black, "
        f"centred by its mass in a {size}x{size} image). Any batch size N.\n"
        f"- **Output** `probabilities`: float32 `[N, {classes}]`, each row sums to 1; column i "
        "is class i of the dataset.\n"
        f"- Inside: the run's normalisation `(x / 255 - {cfg.data.mean}) / {cfg.data.std}`, the "
        "network, a softmax.\n\n"
        f"```python\n{load}\n```\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mnistx.export",
        description="Export a trained run's network (normalisation and softmax inside).",
        epilog=f"Example: {EXAMPLE}",
    )
    parser.add_argument(
        "settings", nargs="*", help="run=<folder> or ckpt=<file>, format=onnx|torchscript"
    )
    parser.add_argument("--out", help="write here (default: <run>/export/<checkpoint>-<format>)")
    parser.add_argument(
        "--overwrite", action="store_true", help="let --out replace an earlier export there"
    )
    args = parser.parse_args(argv)
    return exit_status(
        lambda: export(**parse_settings(args.settings), out=args.out, overwrite=args.overwrite)
    )


if __name__ == "__main__":
    from mnistx.fast_exit import exiting_fast

    with exiting_fast():
        sys.exit(main())
