"""What a multirun costs beyond its training: per job, in memory, and for a single run.

Runs `python -m mnistx.train` as a user does (default MLP, default callbacks with pictures, the
real MNIST files) and reads each job's training time from its metrics.json:

  1-job sweep      F = wall - train: the fixed cost (start-up, imports, the report)
  5-job sweep      seeds 1-5 of the same job: per-job cost (wall5 - sum(train5) - F) / 4,
                   and, steadier, from inside each sweep: the time between two jobs' ends
                   minus the later job's training (a value per job, their median and range)
                   (and, once, for 5 learning rates at one seed, whose jobs share a data split,
                   and once with the progress bar on, as users run; off elsewhere)
                   and the efficiency sum(train5) / wall5 (medians of --repeats pairs, each
                   pair run back to back: this machine's speed drifts)
  joblib, 2 jobs   the same 5 jobs with hydra/launcher=joblib hydra.launcher.n_jobs=2
  memory           peak resident memory of a 12-job multirun over that of a 1-job one
                   (1-epoch jobs cut to a few batches: memory, not time)
  single run       wall - train of one default run

    python bench/sweep_overhead.py [--epochs 3] [--repeats 5] [--data-dir data]
                                   [--skip joblib,memory]

It prints the table and writes it to bench/SWEEP_OVERHEAD.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(args: list[str], cwd: Path) -> tuple[float, int]:
    """Wall seconds and peak resident memory (MiB) of `python -m mnistx.train ARGS`."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mnistx.train", *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: mnistx.train {' '.join(args)}\n{proc.stderr.read().decode()}")
    return wall, usage.ru_maxrss // 1024


def train_seconds(folder: Path) -> list[float]:
    files = sorted(folder.glob("*/metrics.json")) or [folder / "metrics.json"]
    return [json.loads(f.read_text())["train_seconds"] for f in files]


def per_job_costs(folder: Path) -> list[float]:
    """Each job's cost beyond its training, inside one sweep: the time from the previous
    job's end (its metrics.json written) to this job's end, minus this job's training. One
    value per job after the first, all from one run: no difference of whole runs, whose
    fixed costs drift by a second here."""
    records = sorted(folder.glob("*/metrics.json"), key=lambda f: f.stat().st_mtime)
    ends = [f.stat().st_mtime for f in records]
    trains = [json.loads(f.read_text())["train_seconds"] for f in records]
    return [ends[i] - ends[i - 1] - trains[i] for i in range(1, len(records))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="1-job + 5-job pairs (median)")
    parser.add_argument("--data-dir", default=str(HERE.parent / "data"))
    parser.add_argument("--skip", default="", help="comma-separated: joblib, memory")
    opts = parser.parse_args()
    skip = set(opts.skip.split(","))
    common = [
        f"data.data_dir={Path(opts.data_dir).resolve()}",
        f"trainer.max_epochs={opts.epochs}",
        "trainer.enable_progress_bar=false",
    ]
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        trials = []  # (wall1, fixed, wall5, train5, per-job), a 1-job and a 5-job sweep each
        inside: list[float] = []  # per-job costs measured inside each 5-job sweep
        for r in range(opts.repeats):
            wall1, _ = run(["-m", *common, "seed=1", f"hydra.sweep.dir={cwd}/one{r}"], cwd)
            fixed = wall1 - sum(train_seconds(cwd / f"one{r}"))
            wall5, _ = run(["-m", *common, "seed=1,2,3,4,5", f"hydra.sweep.dir={cwd}/five{r}"], cwd)
            train5 = sum(train_seconds(cwd / f"five{r}"))
            inside += per_job_costs(cwd / f"five{r}")
            trials.append((wall1, fixed, wall5, train5, (wall5 - train5 - fixed) / 4))
        wall1, fixed, wall5, train5, per_job = (
            statistics.median(t[i] for t in trials) for i in range(5)
        )
        rows += [
            (
                "1-job sweep: wall, train, fixed cost F",
                f"{wall1:.1f} s, {wall1 - fixed:.1f} s, {fixed:.1f} s",
            ),
            ("5-job sweep: wall, sum of train", f"{wall5:.1f} s, {train5:.1f} s"),
            (
                "cost per job beyond training: (wall5 - train5 - F) / 4",
                f"{per_job:.2f} s (each try: {', '.join(f'{t[4]:.2f}' for t in trials)})",
            ),
            (
                "cost per job beyond training, inside each 5-job sweep: median (range)",
                f"{statistics.median(inside):.2f} s ({min(inside):.2f}-{max(inside):.2f}, "
                f"{len(inside)} jobs)",
            ),
            ("5-job efficiency: train5 / wall5", f"{train5 / wall5:.2f}"),
        ]
        bar = [c for c in common if "enable_progress_bar" not in c]  # the default: shown
        run(["-m", *bar, "seed=1,2,3,4,5", f"hydra.sweep.dir={cwd}/bar"], cwd)
        shown = per_job_costs(cwd / "bar")
        rows.append(
            (
                "the same with the progress bar on (the default), inside the sweep: median (range)",
                f"{statistics.median(shown):.2f} s ({min(shown):.2f}-{max(shown):.2f})",
            )
        )
        lrs = "optimizer.lr=1e-3,2e-3,3e-3,4e-3,5e-3"  # one seed: the jobs share one data split
        walll, _ = run(["-m", *common, lrs, f"hydra.sweep.dir={cwd}/lrs"], cwd)
        trainl = sum(train_seconds(cwd / "lrs"))
        rows.append(
            (
                "5-job sweep of optimizer.lr, one seed: cost per job",
                f"{(walll - trainl - fixed) / 4:.2f} s",
            )
        )
        if "joblib" not in skip:
            wallj, _ = run(
                [
                    "-m",
                    *common,
                    "seed=1,2,3,4,5",
                    "hydra/launcher=joblib",
                    "hydra.launcher.n_jobs=2",
                    f"hydra.sweep.dir={cwd}/joblib",
                ],
                cwd,
            )
            trainj = sum(train_seconds(cwd / "joblib"))
            rows.append(
                (
                    "joblib n_jobs=2, 5 jobs: wall, sum of train, train / wall",
                    f"{wallj:.1f} s, {trainj:.1f} s, {trainj / wallj:.2f}",
                )
            )
        if "memory" not in skip:
            short = [
                *common[:1],
                "trainer.max_epochs=1",
                "++trainer.limit_train_batches=10",
                "trainer.enable_progress_bar=false",
            ]
            _, mem1 = run(["-m", *short, "seed=1", f"hydra.sweep.dir={cwd}/m1"], cwd)
            seeds = ",".join(str(s) for s in range(1, 13))
            _, mem12 = run(["-m", *short, f"seed={seeds}", f"hydra.sweep.dir={cwd}/m12"], cwd)
            rows.append(
                (
                    "peak memory: 1-job, 12-job multirun, ratio",
                    f"{mem1} MiB, {mem12} MiB, {mem12 / mem1:.2f}x",
                )
            )
        walls, _ = run([*common, f"hydra.run.dir={cwd}/single"], cwd)
        trains = train_seconds(cwd / "single")[0]
        rows.append(
            (
                "single default run: wall, train, wall - train",
                f"{walls:.1f} s, {trains:.1f} s, {walls - trains:.1f} s",
            )
        )

    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    table = ["| measure | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
    (HERE / "SWEEP_OVERHEAD.md").write_text(
        f"# Sweep overhead\n\n`python bench/sweep_overhead.py --epochs {opts.epochs} --repeats "
        f"{opts.repeats}` on "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores "
        f"(default MLP, {opts.epochs}-epoch jobs, pictures on, real MNIST).\n\n"
        + "\n".join(table)
        + "\n"
    )


if __name__ == "__main__":
    main()
