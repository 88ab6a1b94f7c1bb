"""A sweep cut short is finished by running it again into its folder (basic launcher): the
finished jobs are left byte-identical, the interrupted ones continue from their checkpoints,
the ones that never started run, and the report covers the whole grid."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from helpers import TINY_OVERRIDES, run_cli, snapshot, start_cli

from mnistx.sweeps.comparison import load_runs

LRS = "optimizer.lr=1e-3,2e-3,3e-3"
JOBS = ["optimizer.lr=0.001", "optimizer.lr=0.002", "optimizer.lr=0.003"]


def _sweep_args(data: Path, sweep_dir: Path) -> list[str]:
    # Batches of 2: epochs long enough to stop the sweep inside the second job.
    return [
        "-m",
        f"data.data_dir={data}",
        *TINY_OVERRIDES,
        "data.batch_size=2",
        "trainer.max_epochs=3",
        LRS,
        f"hydra.sweep.dir={sweep_dir}",
    ]


def _start_and_stop(cwd: Path, args: list[str], job: Path, sig: int) -> Any:
    """Start the sweep and send `sig` once `job` has its first checkpoint."""
    proc = start_cli(cwd, *args)
    deadline = time.time() + 240
    while not (job / "checkpoints" / "last.ckpt").exists():
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()
        time.sleep(0.02)
    time.sleep(0.1)
    proc.send_signal(sig)
    proc.wait(timeout=120)
    return proc


def _metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def test_a_killed_sweep_finishes_when_its_command_runs_again(tiny_data, tmp_path):
    sweep_dir = tmp_path / "sw"
    args = _sweep_args(tiny_data, sweep_dir)
    killed = _start_and_stop(tmp_path, args, sweep_dir / JOBS[1], signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert not (sweep_dir / JOBS[1] / "metrics.json").exists()
    assert not (sweep_dir / JOBS[2]).exists()
    first_job, record = snapshot(sweep_dir / JOBS[0]), snapshot(sweep_dir)["multirun.yaml"]
    own_config = (sweep_dir / JOBS[1] / ".hydra" / "config.yaml").read_bytes()

    proc = run_cli(tmp_path, *args)
    assert "1 finished (left as they are), 1 to continue from their checkpoints, 1 to start" in (
        proc.stdout + proc.stderr
    )
    assert snapshot(sweep_dir / JOBS[0]) == first_job  # not run again, not touched
    assert snapshot(sweep_dir)["multirun.yaml"] == record
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == JOBS  # no `-1` copies

    continued = _metrics(sweep_dir / JOBS[1])
    assert continued["status"] == "ok" and continued["epochs"] == 3
    assert len(continued["history"]["val/acc"]) == 3  # the whole run, not just the rest
    (resume,) = continued["resumes"]
    assert 1 <= resume["from_epoch"] < 3 and resume["checkpoint"] == "last.ckpt"
    assert continued["swept"] == {"optimizer.lr": "0.002"}
    assert (sweep_dir / JOBS[1] / ".hydra" / "config.yaml").read_bytes() == own_config
    assert list((sweep_dir / JOBS[1] / ".hydra").glob("resumed-*/config.yaml"))
    assert _metrics(sweep_dir / JOBS[2])["status"] == "ok"
    assert _status(sweep_dir) == dict.fromkeys(JOBS, "ok")

    # Continuing from the checkpoint ends where the uninterrupted run ends.
    alone = tmp_path / "alone"
    run_cli(
        tmp_path,
        *[a for a in args[1:] if not a.startswith(("optimizer.lr", "hydra."))],
        "optimizer.lr=2e-3",
        f"hydra.run.dir={alone}",
    )
    for key in ("test/acc", "val/acc_best", "test/loss"):
        assert continued[key] == _metrics(alone)[key], key


def _status(sweep_dir: Path) -> dict[str, str]:
    return {
        r["dir"].rsplit("/", 1)[-1] if r["dir"] else "/".join(r["overrides"][-1:]): r["status"]
        for r in load_runs([sweep_dir])
    }


def test_ctrl_c_reports_the_sweep_and_prints_the_command_that_finishes_it(tiny_data, tmp_path):
    import re

    sweep_dir = tmp_path / "sw"
    stopped = _start_and_stop(
        tmp_path, _sweep_args(tiny_data, sweep_dir), sweep_dir / JOBS[1], signal.SIGINT
    )
    assert stopped.returncode == 130
    printed = re.search(r"interrupted: continue with (.+)", stopped.stderr.read())[1]
    assert printed == f"python -m mnistx.train resume={sweep_dir}"
    assert "rest of its sweep" in _metrics(sweep_dir / JOBS[1])["reason"]
    # The report was written on Ctrl-C: what finished, what stopped, what never started.
    assert _status(sweep_dir) == dict(zip(JOBS, ("ok", "interrupted", "not started"), strict=True))
    assert "not started" in (sweep_dir / "comparison.md").read_text()
    first_job = snapshot(sweep_dir / JOBS[0])

    # The printed command works when pasted into bash.
    done = subprocess.run(
        ["bash", "-c", printed.replace("python", sys.executable, 1)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert snapshot(sweep_dir / JOBS[0]) == first_job
    continued = _metrics(sweep_dir / JOBS[1])
    assert continued["status"] == "ok" and len(continued["resumes"]) == 1
    assert continued["swept"] == {"optimizer.lr": "0.002"}
    assert _status(sweep_dir) == dict.fromkeys(JOBS, "ok")
    assert "not started" not in (sweep_dir / "comparison.md").read_text()


def test_running_a_sweep_into_its_folder_is_checked_first(tiny_data, tmp_path, cli_here):
    sweep_dir = tmp_path / "sw"
    common = [f"data.data_dir={tiny_data}", *TINY_OVERRIDES, "trainer.max_epochs=1"]
    run_cli(tmp_path, "-m", *common, "optimizer.lr=1e-3,1e-2", f"hydra.sweep.dir={sweep_dir}")
    before = snapshot(sweep_dir)

    # All finished: nothing to run, nothing changed, both ways of asking.
    for args in (
        ["-m", *common, "optimizer.lr=1e-3,1e-2", f"hydra.sweep.dir={sweep_dir}"],
        [f"resume={sweep_dir}"],
    ):
        code, out, err = cli_here(tmp_path, *args)
        assert code == 0 and "all 2 jobs of the sweep are finished" in out, err
    # Another sweep into its folder; other settings with resume=; a run's folder as a sweep's.
    run_cli(tmp_path, *common, f"hydra.run.dir={tmp_path / 'single'}")
    for args, message in (
        (
            ["-m", *common, "optimizer.lr=1e-3,1e-1", f"hydra.sweep.dir={sweep_dir}"],
            "holds the sweep",
        ),
        ([f"resume={sweep_dir}", "optimizer.lr=0.5"], "takes no other settings"),
        (["-m", *common, f"hydra.sweep.dir={tmp_path / 'single'}"], "single run's folder"),
        (
            ["-m", *common, "optimizer.lr=1e-3,1e-2", "hydra.sweeper.max_batch_size=0"],
            "hydra.sweeper.max_batch_size=0 must be null",
        ),
    ):
        code, out, err = cli_here(tmp_path, *args)
        assert code == 1 and message in err and "Traceback" not in err, (args, err)
    assert snapshot(sweep_dir) == before

    # A job folder in use by another process: the sweep is still running.
    (sweep_dir / "optimizer.lr=0.01" / "metrics.json").unlink()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import fcntl, os, sys, time\n"
                f"fd = os.open({str(sweep_dir / 'optimizer.lr=0.01' / '.lock')!r}, os.O_RDWR)\n"
                "fcntl.flock(fd, fcntl.LOCK_EX); os.ftruncate(fd, 0); os.write(fd, b'4242')\n"
                "print('held', flush=True); time.sleep(120)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, err = cli_here(tmp_path, f"resume={sweep_dir}")
        assert code == 1 and "still running: process 4242" in err
    finally:
        holder.kill()
        holder.wait()

    # Once free, it finishes: the job killed while testing (checkpoints, no metrics.json) and
    # a job that failed (say, on a node that went down) continue from their last.ckpt.
    failed = sweep_dir / "optimizer.lr=0.001"
    (failed / "metrics.json").write_text(json.dumps({"status": "failed", "reason": "node lost"}))
    proc = run_cli(tmp_path, f"resume={sweep_dir}")
    assert "0 finished (left as they are), 2 to continue" in proc.stdout + proc.stderr
    assert _status(sweep_dir) == {"optimizer.lr=0.001": "ok", "optimizer.lr=0.01": "ok"}
    assert _metrics(failed)["resumes"][0]["from_epoch"] == 1
