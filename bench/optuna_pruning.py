"""What pruning buys an Optuna search: wall time and best val/acc, with and without it.

Runs the default search as a user does, `python -m mnistx.train -m hparams_search=optuna`
(3-epoch MLP trials over the preset's space, the real MNIST files, TPE seeded with `seed`),
with hydra.sweeper.n_trials=12, once with hydra.sweeper.pruner=none and once with the
default pruner (median), for each seed. Both searches of a seed sample the same first trials;
the pruner's saving is the epochs it stops, and its cost is the trials it stops that would
have won.

    python bench/optuna_pruning.py [--trials 12] [--seeds 42,43,44] [--data-dir data]
                                   [--pruners none,median,hyperband]

It prints the table and writes it to bench/OPTUNA_PRUNING.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def search(cwd: Path, data_dir: Path, trials: int, seed: int, pruner: str) -> dict:
    import optuna

    name = f"bench_{pruner}_{seed}"
    args = [
        "-m",
        "hparams_search=optuna",
        f"data.data_dir={data_dir}",
        f"seed={seed}",
        "trainer.enable_progress_bar=false",
        "hydra.callbacks.sweep.report=false",
        f"hydra.sweeper.n_trials={trials}",
        f"hydra.sweeper.pruner={pruner}",
        f"hydra.sweeper.study_name={name}",
    ]
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mnistx.train", *args], cwd=cwd, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"failed: mnistx.train {' '.join(args)}\n{proc.stderr}")
    study = optuna.load_study(
        study_name=name, storage=f"sqlite:///{cwd}/outputs/optuna/{name}/optuna.db"
    )
    states = [t.state.name for t in study.trials]
    folders = [Path(t.user_attrs["mnistx.folder"]) for t in study.trials]
    return {
        "wall": wall,
        "train": sum(
            json.loads((f / "metrics.json").read_text())["train_seconds"] for f in folders
        ),
        "best": study.best_value,
        "pruned": states.count("PRUNED"),
        "epochs": sum(len(t.intermediate_values) for t in study.trials),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seeds", default="42,43,44")
    parser.add_argument("--pruners", default="none,median")
    parser.add_argument("--data-dir", default=str(HERE.parent / "data"))
    opts = parser.parse_args()
    seeds = [int(s) for s in opts.seeds.split(",")]
    pruners = opts.pruners.split(",")
    data_dir = Path(opts.data_dir).resolve()
    results: dict[str, list[dict]] = {p: [] for p in pruners}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for pruner in pruners:  # back to back: this machine's speed drifts
                result = search(Path(tmp), data_dir, opts.trials, seed, pruner)
                results[pruner].append(result)
                print(f"seed {seed}, pruner {pruner}: {result}", file=sys.stderr)
    lines = [
        "# Pruning an Optuna search",
        "",
        f"`python bench/optuna_pruning.py --trials {opts.trials} --seeds {opts.seeds}` on "
        f"{platform.machine()}, {_cores()} cores: `-m hparams_search=optuna` (3-epoch MLP "
        f"trials, the preset's space, real MNIST), {opts.trials} trials per search, one search "
        "per seed and pruner.",
        "",
        "| pruner | wall time, median (each seed) | training time, median | epochs trained | "
        "trials pruned | best val/acc, median (each seed) |",
        "|---|---|---|---|---|---|",
    ]
    for pruner in pruners:
        rs = results[pruner]
        walls = ", ".join(f"{r['wall']:.0f}" for r in rs)
        bests = ", ".join(f"{100 * r['best']:.2f}" for r in rs)
        lines.append(
            f"| {pruner} | {statistics.median(r['wall'] for r in rs):.0f} s ({walls}) | "
            f"{statistics.median(r['train'] for r in rs):.0f} s | "
            f"{sum(r['epochs'] for r in rs)} of {len(rs) * opts.trials * 3} | "
            f"{sum(r['pruned'] for r in rs)} of {len(rs) * opts.trials} | "
            f"{100 * statistics.median(r['best'] for r in rs):.2f}% ({bests}) |"
        )
    if "none" in results:
        base = results["none"]
        for pruner in pruners:
            if pruner == "none":
                continue
            ratios = [r["wall"] / b["wall"] for r, b in zip(results[pruner], base, strict=True)]
            lines.append("")
            lines.append(
                f"{pruner} over none, wall time per seed: "
                + ", ".join(f"{x:.2f}x" for x in ratios)
                + f" (median {statistics.median(ratios):.2f}x)."
            )
    text = "\n".join(lines) + "\n"
    print(text)
    (HERE / "OPTUNA_PRUNING.md").write_text(text)


def _cores() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    main()
