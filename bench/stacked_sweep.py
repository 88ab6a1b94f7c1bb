"""A sweep trained stacked (hydra/launcher=stacked) against the same sweep with Hydra's basic
launcher, end to end, as a user runs them.

Runs `python -m mnistx.train -m ...` (the real MNIST files, default callbacks with pictures,
3-epoch jobs) for each sweep below, basic and stacked back to back in each round (this
machine's speed drifts), and reports medians over the rounds: wall time, the speed-up
(basic wall / stacked wall), the spread of the ratio over the rounds, and peak resident
memory. Each stacked job's test accuracy is checked against its basic twin (the largest gap
is reported; more than a point fails: more than float rounding grown over the steps).

    python bench/stacked_sweep.py [--rounds 3] [--epochs 3] [--data-dir data]
                                  [--only mlp8,mlp16,lr_x_seed,cnn4]

It prints the table and writes it to bench/STACKED.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from sweep_overhead import run  # noqa: E402  (`python -m mnistx.train ARGS`: wall, memory)

SWEEPS = {
    "mlp8": ("MLP, 8 seeds", ["seed=" + ",".join(map(str, range(8)))]),
    "mlp16": ("MLP, 16 seeds", ["seed=" + ",".join(map(str, range(16)))]),
    "lr_x_seed": (
        "MLP, 4 lr x 2 seeds",
        ["optimizer.lr=3e-4,1e-3,3e-3,1e-2", "seed=0,1"],
    ),
    # A CNN epoch takes ~45 s on this CPU: one epoch of 200 batches.
    "cnn4": (
        "CNN, 4 seeds, 1 epoch of 200 batches",
        ["model=cnn", "seed=0,1,2,3", "trainer.max_epochs=1", "++trainer.limit_train_batches=200"],
    ),
}


def accuracies(folder: Path) -> dict[str, float]:
    return {
        f.parent.name: json.loads(f.read_text())["test/acc"]
        for f in sorted(folder.glob("*/metrics.json"))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data-dir", default=str(HERE.parent / "data"))
    parser.add_argument("--only", default=",".join(SWEEPS))
    opts = parser.parse_args()
    common = [
        "-m",
        f"data.data_dir={Path(opts.data_dir).resolve()}",
        "trainer.enable_progress_bar=false",
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        for name in opts.only.split(","):
            label, swept = SWEEPS[name]
            if not any(a.startswith("trainer.max_epochs=") for a in swept):
                swept = [*swept, f"trainer.max_epochs={opts.epochs}"]
            basic, stacked, ratios, mem_b, mem_s, gaps = [], [], [], [], [], []
            for r in range(opts.rounds):
                b_dir, s_dir = cwd / f"{name}-basic{r}", cwd / f"{name}-stacked{r}"
                wb, mb = run([*common, *swept, f"hydra.sweep.dir={b_dir}"], cwd)
                ws, ms = run(
                    [*common, *swept, "hydra/launcher=stacked", f"hydra.sweep.dir={s_dir}"],
                    cwd,
                )
                a, s = accuracies(b_dir), accuracies(s_dir)
                worst = max(abs(a[k] - s[k]) for k in a)
                if a.keys() != s.keys() or worst > 0.01:  # a point: more than rounding
                    raise SystemExit(f"{name}: stacked test/acc differs from basic by {worst}")
                gaps.append(worst)
                basic.append(wb)
                stacked.append(ws)
                ratios.append(wb / ws)
                mem_b.append(mb)
                mem_s.append(ms)
            rows.append(
                (
                    label,
                    f"{statistics.median(basic):.1f} s",
                    f"{statistics.median(stacked):.1f} s",
                    f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})",
                    f"{statistics.median(mem_b):.0f} / {statistics.median(mem_s):.0f} MiB",
                    f"{100 * max(gaps):.2f} points",
                )
            )
            print(" | ".join(rows[-1]), flush=True)
    head = (
        "sweep",
        "basic launcher",
        "stacked",
        "speed-up (range)",
        "peak memory basic / stacked",
        "largest test/acc gap",
    )
    table = [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]
    (HERE / "STACKED.md").write_text(
        f"# Stacked sweeps\n\n`python bench/stacked_sweep.py --rounds {opts.rounds} --epochs "
        f"{opts.epochs}` on {platform.processor() or platform.machine()}, {os.cpu_count()} "
        f"cores: {opts.epochs}-epoch jobs on the real MNIST, default callbacks (pictures on), "
        "wall time of the whole `python -m mnistx.train -m ...` command, medians of "
        f"{opts.rounds} rounds (basic and stacked back to back in each). The last column is "
        "the largest difference in test accuracy between a stacked job and the same job with "
        "the basic launcher: float rounding (batched products sum in another order) that "
        "grows over thousands of steps.\n\n" + "\n".join(table) + "\n"
    )


if __name__ == "__main__":
    main()
