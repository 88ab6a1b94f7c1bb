"""Evaluate a trained run on the official test set: `python -m mnistx.eval run=<run dir>`.

    python -m mnistx.eval run=outputs/2026-11-23/14-02-11 [--out DIR]
    python -m mnistx.eval ckpt=outputs/2026-11-23/14-02-11/checkpoints/last.ckpt
    (data_dir=<folder> points at the data when it has moved since training)

The data module and the model are rebuilt from the run's own saved config (.hydra/config.yaml)
and checkpoint, not from today's defaults, and tested through the same Lightning test loop as
at the end of training, so test/acc matches the run's metrics.json for the same checkpoint.
Prints accuracy, loss, a per-class table and the most confused pairs; writes eval.json,
confusion_matrix.png and misclassified.png into <run>/eval/<checkpoint name>/ (or --out), never
over the training run's own files.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistx.errors import UserError, exit_status
from mnistx.runs.saved import read_metrics, run_config

if TYPE_CHECKING:
    import torch

KEYS = ("run", "ckpt", "data_dir")
WRITES = ("eval.json", "confusion_matrix.png", "misclassified.png")


def parse_settings(settings: Sequence[str]) -> dict[str, str]:
    parsed = {}
    for item in settings:
        key, sep, value = item.partition("=")
        key = key.removeprefix("data.")
        if not sep or key not in KEYS or not value:
            raise UserError(
                f"Cannot read {item!r}: expected run=<run folder>, ckpt=<checkpoint file> or "
                "data_dir=<folder>, e.g. python -m mnistx.eval run=outputs/2026-11-23/14-02-11"
            )
        parsed[key] = value
    if "run" not in parsed and "ckpt" not in parsed:
        raise UserError(
            "Say which run to evaluate: run=<run folder> (its best checkpoint) or "
            "ckpt=<checkpoint file>, e.g. python -m mnistx.eval run=outputs/2026-11-23/14-02-11"
        )
    return parsed


def _accelerator(run_dir: Path) -> str:
    """Where the run was tested, if this machine has it (same device, same arithmetic)."""
    import torch

    metrics = read_metrics(run_dir) or {}
    used = metrics.get("accelerator")
    if used == "cpu" or (used == "cuda" and torch.cuda.is_available()):
        return {"cpu": "cpu", "cuda": "gpu"}[used]
    return "auto"


def per_class(
    probs: torch.Tensor, targets: torch.Tensor, names: Sequence[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any]:
    from torchmetrics.functional.classification import (
        multiclass_confusion_matrix,
        multiclass_f1_score,
        multiclass_precision,
        multiclass_recall,
    )

    n = probs.shape[1]
    preds = probs.argmax(1)
    scores = {
        name: fn(preds, targets, num_classes=n, average=None)
        for name, fn in (
            ("precision", multiclass_precision),
            ("recall", multiclass_recall),
            ("f1", multiclass_f1_score),
        )
    }
    support = targets.bincount(minlength=n)
    rows = [
        {
            "class": names[c],
            **{k: float(v[c]) for k, v in scores.items()},
            "support": int(support[c]),
        }
        for c in range(n)
    ]
    confmat = multiclass_confusion_matrix(preds, targets, num_classes=n)
    off = confmat.clone()
    off.fill_diagonal_(0)
    pairs = []
    for flat in off.flatten().argsort(descending=True)[:5]:
        true, pred = divmod(int(flat), n)
        if off[true, pred] > 0:
            pairs.append({"true": names[true], "pred": names[pred], "count": int(off[true, pred])})
    return rows, pairs, confmat


def evaluate(
    run: str | None = None,
    ckpt: str | None = None,
    data_dir: str | None = None,
    out: str | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:

    from mnistx.config.build import build
    from mnistx.inspection import drawing
    from mnistx.inspection.inference import captions, most_confident_mistakes, predict_probs
    from mnistx.runs.compose import set_up_omegaconf
    from mnistx.runs.guard import check_folder, expand, make_folder
    from mnistx.runs.layout import EVAL
    from mnistx.runs.records import resolved, write_json
    from mnistx.runs.saved import locate
    from mnistx.training.module import ClassifierModule
    from mnistx.training.runtime import quiet_libraries

    set_up_omegaconf()
    quiet_libraries()
    run_dir, ckpt_path = locate(run, ckpt)
    cfg = run_config(run_dir, data_dir)
    if out is None:  # the run's own evaluation of this checkpoint, made again when asked
        out_dir = run_dir / EVAL / ckpt_path.stem
        check_folder(out_dir, "The evaluation folder", WRITES, own=run_dir)
    else:
        out_dir = expand(out, "--out")
        check_folder(out_dir, "--out", WRITES, overwrite=overwrite)
    make_folder(out_dir, "--out")

    module = ClassifierModule.from_checkpoint(ckpt_path)
    datamodule = build("data", cfg.data)
    trainer = build(  # the run's Trainer class, built as every object is: for testing only
        "trainer",
        {
            "_target_": cfg.trainer.get("_target_", "lightning.pytorch.Trainer"),
            "accelerator": _accelerator(run_dir),
            "devices": 1,
            "precision": cfg.trainer.get("precision", "32-true"),
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
        },
    )
    results = trainer.test(module, datamodule=datamodule, verbose=False)[0]

    x, y = datamodule.splits["test"].tensors()
    y = y.cpu()
    probs = predict_probs(module, x)
    names = [str(c) for c in datamodule.classes] or [str(i) for i in range(probs.shape[1])]
    rows, pairs, confmat = per_class(probs, y, names)
    drawing.save(drawing.confusion_figure(confmat, names), out_dir / "confusion_matrix.png")
    wrong = most_confident_mistakes(probs, y, 32)
    if len(wrong):
        fig = drawing.image_grid(
            x[wrong].cpu(),
            captions(probs, y, wrong),
            [True] * len(wrong),
            datamodule.mean,
            datamodule.std,
            "Most confidently wrong test images",
        )
        drawing.save(fig, out_dir / "misclassified.png")

    report = {
        "test/acc": results["test/acc"],
        "test/loss": results["test/loss"],
        "checkpoint": str(ckpt_path),
        "run": str(run_dir),
        "test_images": len(y),
        "per_class": rows,
        "most_confused": pairs,
    }
    report = resolved(report)  # test/acc to what the test set resolves, as metrics.json
    write_json(out_dir / "eval.json", report)
    print_report(report, out_dir)
    return report


def print_report(report: dict[str, Any], out_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]test accuracy {100 * report['test/acc']:.2f}%[/bold], test loss "
        f"{report['test/loss']:.4f} on {report['test_images']:,} official test images "
        f"({report['checkpoint']})",
        soft_wrap=True,  # a path is never cut in two (rich wraps at 80 columns in a pipe)
    )
    table = Table(title="Per class", title_justify="left")
    for col in ("class", "precision", "recall", "F1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for r in report["per_class"]:
        table.add_row(
            r["class"],
            f"{r['precision']:.3f}",
            f"{r['recall']:.3f}",
            f"{r['f1']:.3f}",
            f"{r['support']:,}",
        )
    console.print(table)
    if report["most_confused"]:
        console.print("Most confused (true -> predicted):")
        for p in report["most_confused"]:
            console.print(f"  {p['true']} -> {p['pred']}: {p['count']} images")
    console.print(
        f"Written to {out_dir}: eval.json, confusion_matrix.png, misclassified.png",
        soft_wrap=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mnistx.eval",
        description="Evaluate a trained run's checkpoint on the official test set.",
        epilog="Example: python -m mnistx.eval run=outputs/2026-11-23/14-02-11",
    )
    parser.add_argument("settings", nargs="*", help="run=<folder>, ckpt=<file>, data_dir=<folder>")
    parser.add_argument(
        "--out", help="write eval.json and the PNGs here (default: <run>/eval/<checkpoint>)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="let --out replace an earlier evaluation there"
    )
    args = parser.parse_args(argv)
    return exit_status(
        lambda: evaluate(**parse_settings(args.settings), out=args.out, overwrite=args.overwrite)
    )


if __name__ == "__main__":
    from mnistx.fast_exit import exiting_fast

    with exiting_fast():
        sys.exit(main())
