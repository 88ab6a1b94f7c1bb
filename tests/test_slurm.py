"""Sweeps on a real SLURM cluster: the single-host, two-node cluster that `.ci/slurm-cluster.sh`
starts (CI starts it and sets MNISTX_SLURM=1, so there these tests must run). Elsewhere they
are skipped, with the reason, when no cluster answers."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import TINY_OVERRIDES, run_cli, start_cli, two_node_ddp

pytestmark = [pytest.mark.slow, pytest.mark.slurm]
JOBS = ("optimizer.lr=0.001", "optimizer.lr=0.01")
# What a job may ask of the test cluster's nodes (2 cores each, no GPU).
ON_TEST_CLUSTER = [
    "hydra/launcher=slurm",
    "hydra.launcher.partition=debug",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
]


def _cluster_up() -> str | None:
    """None when two nodes answer; else why not."""
    if shutil.which("sinfo") is None:
        return "SLURM is not installed (start a test cluster with `.ci/slurm-cluster.sh start`)"
    try:
        states = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=20
        ).stdout.split()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"sinfo failed ({e})"
    if sum(s.rstrip("*") in ("idle", "mixed", "allocated") for s in states) < 2:
        return f"no two SLURM nodes up (sinfo: {states}); `.ci/slurm-cluster.sh start` starts them"
    return None


@pytest.fixture(scope="module")
def slurm() -> None:
    reason = _cluster_up()
    if reason is not None:
        if os.environ.get("MNISTX_SLURM") == "1":
            pytest.fail(f"CI expects the test cluster, but {reason}")
        pytest.skip(reason)


def _metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def test_a_slurm_array_sweep_gives_the_basic_launchers_numbers(slurm, tiny_data, tmp_path):
    common = ["-m", f"data.data_dir={tiny_data}", *TINY_OVERRIDES, "optimizer.lr=1e-3,1e-2"]
    run_cli(tmp_path, *common, f"hydra.sweep.dir={tmp_path / 'basic'}")
    proc = run_cli(tmp_path, *common, *ON_TEST_CLUSTER, f"hydra.sweep.dir={tmp_path / 'slurm'}")
    for job in JOBS:
        local, cluster = _metrics(tmp_path / "basic" / job), _metrics(tmp_path / "slurm" / job)
        assert cluster["status"] == "ok" and cluster["swept"] == local["swept"]
        for key in ("test/acc", "test/loss", "val/acc_best", "best_epoch", "epochs", "history"):
            assert cluster[key] == local[key], (job, key)
    # It ran as one SLURM array job (submitit's logs per task), and the report covers it.
    logs = list((tmp_path / "slurm" / ".submitit").rglob("*_log.out"))
    assert {p.name.split("_")[1] for p in logs} == {"0", "1"}
    with open(tmp_path / "slurm" / "comparison.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["optimizer.lr"] for r in rows) == ["0.001", "0.01"]
    assert all(r["status"] == "ok" for r in rows)
    # Without accounting, one line says so (sacct and submitit used to, on every poll).
    output = proc.stdout + proc.stderr
    assert "following the jobs with squeue" in output
    assert "Bypassing sacct error" not in output and "accounting storage is disabled" not in output


def test_optuna_trials_run_on_the_cluster_n_jobs_at_a_time(slurm, tiny_data, tmp_path):
    import optuna

    run_cli(
        tmp_path,
        "-m",
        "hparams_search=optuna",
        f"data.data_dir={tiny_data}",
        *TINY_OVERRIDES,
        "trainer.max_epochs=1",
        *ON_TEST_CLUSTER,
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.n_trials=2",
        "hydra.callbacks.sweep.report=false",
    )
    study_dir = tmp_path / "outputs" / "optuna" / "mnistx"
    study = optuna.load_study(study_name="mnistx", storage=f"sqlite:///{study_dir}/optuna.db")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert all(t.intermediate_values for t in study.trials)  # reported from the nodes
    # The batch of 2 ran as one SLURM array of 2 tasks.
    logs = list((study_dir / ".submitit").rglob("*_log.out"))
    assert len({p.name.split("_")[0] for p in logs}) == 1
    assert {p.name.split("_")[1] for p in logs} == {"0", "1"}


def test_a_two_node_ddp_run_through_srun_shards_each_epoch_and_keeps_one_folder(
    slurm, tiny_data, tmp_path
):
    """`srun -N2 --ntasks-per-node=1`: one rank per node (gloo), each a task of one SLURM
    step; node names do not resolve on this host, hence MASTER_ADDR."""
    seen = tmp_path / "seen"
    seen.mkdir()
    tests = Path(__file__).parent
    proc = subprocess.run(
        [
            "srun",
            "-N2",
            "--ntasks-per-node=1",
            "-c1",
            "--mem=1G",
            f"--export=ALL,MASTER_ADDR=127.0.0.1,PYTHONPATH={tests}",
            sys.executable,
            "-m",
            "mnistx.train",
            *two_node_ddp(tiny_data, seen),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (run,) = (tmp_path / "outputs").glob("*/*")  # both ranks in one folder
    assert run.name.startswith("slurm-")
    metrics = _metrics(run)
    assert metrics["status"] == "ok" and metrics["epochs"] == 2
    val = set(json.loads((seen / "val-rows.json").read_text()))
    for epoch in (0, 1):
        shards = [json.loads((seen / f"epoch{epoch}-rank{r}.json").read_text()) for r in (0, 1)]
        assert len(shards[0]) == len(shards[1]) == (600 - 100) // 2
        assert not set(shards[0]) & set(shards[1])  # every training image once per epoch
        assert set(shards[0]) | set(shards[1]) == set(range(600)) - val


def _slurm_jobs() -> dict[str, str]:
    """The queue's jobs and their states; squeue is asked again when it fails (a busy
    controller), so that a failed call never reads as an empty queue."""
    for _ in range(10):
        proc = subprocess.run(
            ["squeue", "--me", "--array", "-h", "-o", "%i %T"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if proc.returncode == 0:
            return dict(line.split() for line in proc.stdout.splitlines())
        time.sleep(1)
    raise AssertionError(f"squeue keeps failing: {proc.stderr}")


def _requeue_after_first_checkpoint(folder: Path, proc: Any) -> str:
    """`scontrol requeue` the running job that trains in `folder` once it has saved its first
    checkpoint. It starts again by itself ~11 s later (the test cluster's cred_expire)."""
    deadline = time.time() + 240
    while not (folder / "checkpoints" / "last.ckpt").exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.1)
    (job,) = [j for j, state in _slurm_jobs().items() if state == "RUNNING"]
    subprocess.run(["scontrol", "requeue", job], check=True, timeout=30)
    return job


def _epochs_args(data: Path) -> list[str]:
    # Batches of 2: epochs long enough to requeue the job in the middle of its run.
    return [f"data.data_dir={data}", *TINY_OVERRIDES, "data.batch_size=2", "trainer.max_epochs=3"]


def _one_task_at_a_time(cwd: Path, args: list[str], sweep_dir: Path) -> Any:
    """A 2-job SLURM array sweep (lr 2e-3, 3e-3) running one task at a time, started."""
    return start_cli(
        cwd,
        "-m",
        *args,
        "optimizer.lr=2e-3,3e-3",
        *ON_TEST_CLUSTER,
        "hydra.launcher.array_parallelism=1",
        f"hydra.sweep.dir={sweep_dir}",
        stdout=subprocess.PIPE,
    )


def test_a_requeued_sweep_job_continues_from_its_checkpoint_in_its_folder(
    slurm, tiny_data, tmp_path
):
    sweep_dir = tmp_path / "sw"
    args = _epochs_args(tiny_data)
    # One task at a time: the first is requeued while the second waits.
    proc = _one_task_at_a_time(tmp_path, args, sweep_dir)
    job = sweep_dir / "optimizer.lr=0.002"
    _requeue_after_first_checkpoint(job, proc)
    own_config = (job / ".hydra" / "config.yaml").read_bytes()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    folders = sorted(p.name for p in sweep_dir.iterdir() if p.is_dir() and p.name[0] != ".")
    assert folders == ["optimizer.lr=0.002", "optimizer.lr=0.003"]  # no `-1` copy
    assert _metrics(sweep_dir / "optimizer.lr=0.003")["status"] == "ok"
    continued = _metrics(job)
    assert continued["status"] == "ok" and continued["epochs"] == 3
    (resume,) = continued["resumes"]
    assert 1 <= resume["from_epoch"] < 3 and resume["at"]
    # The run's own config is kept; the continuation's is saved next to it.
    assert (job / ".hydra" / "config.yaml").read_bytes() == own_config
    assert list((job / ".hydra").glob("resumed-*/config.yaml"))
    alone = tmp_path / "alone"
    run_cli(tmp_path, *args, "optimizer.lr=2e-3", f"hydra.run.dir={alone}")
    for key in ("test/acc", "val/acc_best", "test/loss"):
        assert continued[key] == _metrics(alone)[key], key


def test_a_requeued_sbatch_run_continues_in_its_own_folder(slurm, tiny_data, tmp_path):
    args = _epochs_args(tiny_data)
    script = tmp_path / "train.sbatch"
    script.write_text(
        "#!/bin/bash\n#SBATCH --nodes=1 --cpus-per-task=1 --mem=1G --requeue\n"
        f"#SBATCH --output={tmp_path}/slurm-%j.out\ncd {tmp_path}\n"
        f"{sys.executable} -m mnistx.train {' '.join(args)} optimizer.lr=2e-3\n"
    )
    job = subprocess.run(
        ["sbatch", "--parsable", str(script)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    deadline = time.time() + 240
    while not list(tmp_path.glob("outputs/*/*/checkpoints/last.ckpt")):
        assert time.time() < deadline and job in _slurm_jobs()
        time.sleep(0.1)
    subprocess.run(["scontrol", "requeue", job], check=True, timeout=30)
    while job in _slurm_jobs():
        assert time.time() < deadline + 120
        time.sleep(0.5)
    (run,) = tmp_path.glob("outputs/*/*")  # the same folder, not a new timestamped one
    continued = _metrics(run)
    assert continued["status"] == "ok" and continued["epochs"] == 3, (
        tmp_path / f"slurm-{job}.out"
    ).read_text()
    (resume,) = continued["resumes"]
    assert 1 <= resume["from_epoch"] < 3
    alone = tmp_path / "alone"
    run_cli(tmp_path, *args, "optimizer.lr=2e-3", f"hydra.run.dir={alone}")
    for key in ("test/acc", "val/acc_best", "test/loss"):
        assert continued[key] == _metrics(alone)[key], key


def test_a_cancelled_array_sweep_is_finished_by_resume(slurm, tiny_data, tmp_path):
    """scancel after the array's first task finished; `resume=<sweep>` runs the rest through
    the sweep's own launcher (SLURM), leaving the finished task's folder as it was."""
    from helpers import snapshot

    sweep_dir = tmp_path / "sw"
    proc = _one_task_at_a_time(tmp_path, _epochs_args(tiny_data), sweep_dir)
    first = sweep_dir / "optimizer.lr=0.002"
    deadline = time.time() + 240
    while not (first / "metrics.json").exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.1)
    array = next(iter(_slurm_jobs())).split("_")[0]
    subprocess.run(["scancel", array], check=True, timeout=30)
    proc.communicate(timeout=300)
    assert not (sweep_dir / "optimizer.lr=0.003" / "metrics.json").exists()
    kept = snapshot(first)

    done = run_cli(tmp_path, f"resume={sweep_dir}")
    assert "1 finished (left as they are)" in done.stdout + done.stderr
    assert "following the jobs with squeue" in done.stdout + done.stderr  # SLURM again
    assert snapshot(first) == kept
    assert _metrics(sweep_dir / "optimizer.lr=0.003")["status"] == "ok"
    with open(sweep_dir / "comparison.csv") as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["ok", "ok"]


def test_the_slurm_launcher_without_sbatch_is_one_message(tmp_path):
    proc = run_cli(
        tmp_path,
        "-m",
        "hydra/launcher=slurm",
        "optimizer.lr=1e-3,1e-2",
        env={"PATH": str(tmp_path)},
        check=False,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: hydra/launcher=slurm submits") and "sbatch" in proc.stderr
    assert not (tmp_path / "outputs").exists()


def test_a_requeued_job_that_had_finished_changes_nothing(
    cli_here, tiny_data, tmp_path, monkeypatch
):
    """SLURM may requeue a job that has finished training but not yet exited. Run here with
    the environment such a restart has (no cluster needed): the finished run is found by
    the job id in its lock file and left as it was."""
    from helpers import snapshot

    args = [f"data.data_dir={tiny_data}", *TINY_OVERRIDES, "trainer.max_epochs=1"]
    run_cli(tmp_path, *args, env={"SLURM_JOB_ID": "4711"})
    (run,) = tmp_path.glob("outputs/*/*")
    assert "slurm=4711" in (run / ".lock").read_text()
    before = snapshot(run)
    monkeypatch.setenv("SLURM_JOB_ID", "4711")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    code, out, err = cli_here(tmp_path, *args)
    assert code == 0 and "has finished already" in err, err
    assert list(tmp_path.glob("outputs/*/*")) == [run]  # no new timestamped folder
    # Every result, config and log byte as it was; the lock file names its latest holder.
    after = {k: v for k, v in snapshot(run).items() if not k.startswith(".hydra/resumed-")}
    assert {k: v for k, v in after.items() if k != ".lock"} == {
        k: v for k, v in before.items() if k != ".lock"
    }
    assert set(after) == set(before)
