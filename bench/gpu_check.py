"""The GPU check, for a machine with a CUDA GPU: `make gpu-check` (under ~8 minutes on one GPU).

  1. the tests that run only on a GPU (the rest of the suite is the CPU's);
  2. `experiment=fast_cnn target_acc=0.99` on the GPU through mnistx, next to the hand loop of
     bench/time_to_accuracy.py on the same GPU (targets: 99% in <= 0.5 s of training, mnistx
     <= 1.2x the loop), seeds 1-3;
  3. the same preset with `trainer.precision=bf16-mixed`, and with `model.compile=true`;
  4. one `experiment=best_cnn` epoch;
  5. 64 default MLPs trained as one stack (hydra/launcher=stacked) against one, on the GPU
     (goal: under 2x the fit time of one). The stacked tests of step 1 check that stacked
     jobs equal the same jobs alone on CUDA.

Writes the Markdown table to bench/GPU_CHECK.md. Without a GPU it says so and exits 1.

    python bench/gpu_check.py [--data-dir data] [--seeds 1,2,3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _fmt(seconds: float | None) -> str:
    return "not reached" if seconds is None else f"{seconds:.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(HERE.parent / "data"))
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--out", default=str(HERE / "GPU_CHECK.md"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(
            "make gpu-check needs a CUDA GPU, and torch sees none here "
            "(torch.cuda.is_available() is False); nothing was run.",
            file=sys.stderr,
        )
        return 1

    from time_to_accuracy import hand_loop

    from mnistx.runs.compose import compose_config
    from mnistx.training.recipe import train

    name = torch.cuda.get_device_name(0)
    rows: list[tuple[str, str]] = []
    tests = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "gpu or cuda or accelerator or augment",
            str(HERE.parent / "tests"),
        ],
        capture_output=True,
        text=True,
    )
    summary = (tests.stdout.strip().splitlines() or ["(no output)"])[-1]
    rows.append(("GPU-only tests (`-k 'gpu or cuda or accelerator or augment'`)", summary))

    def config(out: str, seed: str, *extra: str):
        return compose_config(
            [
                "experiment=fast_cnn",
                f"seed={seed}",
                "target_acc=0.99",
                f"data.data_dir={args.data_dir}",
                f"output_dir={out}",
                "trainer.accelerator=gpu",
                "trainer.enable_model_summary=false",
                "trainer.enable_progress_bar=false",
                *extra,
            ]
        )

    ratios, ours_s = [], []
    with tempfile.TemporaryDirectory() as out:
        hand_loop(config(out, "1"), 0.99, "cuda")  # warm-up: cuDNN picks its kernels
    for seed in args.seeds.split(","):
        with tempfile.TemporaryDirectory() as out:
            cfg = config(out, seed)
            ours = train(cfg)
            loop = hand_loop(cfg, 0.99, "cuda")
        o, h = ours["seconds_to_target"], loop["seconds"]
        ours_s.append(o)
        if o and h:
            ratios.append(o / h)
        rows.append(
            (
                f"fast_cnn to 99%, seed {seed}: mnistx / hand loop",
                f"{_fmt(o)} ({ours['test/acc']:.2%} test) / {_fmt(h)} "
                f"({loop['test_acc']:.2%} test)",
            )
        )
    reached = [s for s in ours_s if s is not None]
    if reached:
        rows.append(
            (
                "fast_cnn to 99%: median mnistx seconds (target <= 0.5 s)",
                f"{statistics.median(reached):.2f} s",
            )
        )
    if ratios:
        rows.append(
            (
                "fast_cnn to 99%: median mnistx / loop (target <= 1.2x)",
                f"{statistics.median(ratios):.2f}x",
            )
        )
    for label, extra in (
        ("bf16-mixed", ["trainer.precision=bf16-mixed"]),
        ("torch.compile", ["model.compile=true"]),
    ):
        with tempfile.TemporaryDirectory() as out:
            m = train(config(out, "1", *extra))
        compiled = f", compile {m['compile_seconds']:.1f} s" if m.get("compile_seconds") else ""
        rows.append(
            (
                f"fast_cnn to 99%, seed 1, {label}",
                f"{_fmt(m['seconds_to_target'])} ({m['test/acc']:.2%} test{compiled})",
            )
        )
    with tempfile.TemporaryDirectory() as out:
        m = train(
            compose_config(
                [
                    "experiment=best_cnn",
                    "trainer.max_epochs=1",
                    "trainer.accelerator=gpu",
                    f"data.data_dir={args.data_dir}",
                    f"output_dir={out}",
                    "trainer.enable_progress_bar=false",
                ]
            )
        )
    rows.append(
        (
            "best_cnn, one epoch",
            f"{m['seconds_per_epoch']:.2f} s, val/acc {m['val/acc']:.2%}, test {m['test/acc']:.2%}",
        )
    )

    rows.append(("64 stacked MLPs, one epoch: training time / one MLP's", _stacked(args.data_dir)))

    table = ["| check | result |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
    text = (
        f"# GPU check\n\n`make gpu-check` on {name}, torch {torch.__version__}.\n\n"
        + "\n".join(table)
        + "\n"
    )
    Path(args.out).write_text(text)
    print(text)
    return 0 if tests.returncode == 0 else 1


def _stacked(data_dir: str) -> str:
    """The training time of 64 stacked MLPs over that of one alone, both through
    `python -m mnistx.train -m` (a stacked job's train_seconds are its stack's)."""
    import json

    common = [
        "-m",
        f"data.data_dir={data_dir}",
        "trainer.accelerator=gpu",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        "callbacks.pictures=null",
    ]
    stacked = ["hydra/launcher=stacked", "hydra.launcher.max_models=64"]
    seconds = {}
    with tempfile.TemporaryDirectory() as out:
        for n, extra in (
            (1, ["seed=0"]),
            (64, [f"seed={','.join(map(str, range(64)))}", *stacked]),
        ):
            sweep = Path(out) / str(n)
            subprocess.run(
                [sys.executable, "-m", "mnistx.train", *common, *extra, f"hydra.sweep.dir={sweep}"],
                check=True,
                capture_output=True,
            )
            records = [json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")]
            seconds[n] = max(r["train_seconds"] for r in records)
    return f"{seconds[64]:.1f} s / {seconds[1]:.1f} s = {seconds[64] / seconds[1]:.2f}x"


if __name__ == "__main__":
    sys.exit(main())
