"""Sweeps on a real SLURM cluster: the single-host, two-node cluster that `.ci/slurm-cluster.sh`
starts (CI starts it and sets MNISTX_SLURM=1, so there these tests must run). Elsewhere they
are skipped, with the reason, when no cluster answers."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import TINY_OVERRIDES, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.slurm]
JOBS = ("optimizer.lr=0.001", "optimizer.lr=0.01")
# What a job may ask of the test cluster's nodes (2 cores each, no GPU).
ON_TEST_CLUSTER = ["hydra/launcher=slurm", "hydra.launcher.partition=debug",
                   "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1"]


def _cluster_up() -> str | None:
    """None when two nodes answer; else why not."""
    if shutil.which("sinfo") is None:
        return "SLURM is not installed (start a test cluster with `.ci/slurm-cluster.sh start`)"
    try:
        states = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True,
                                text=True, timeout=20).stdout.split()
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


def test_the_squeue_watcher_reads_what_submitits_sacct_watcher_reads():
    """mnistx.slurm swaps submitit's SlurmJob.watcher (a SlurmInfoWatcher) on clusters without
    accounting: if a submitit release renames or reshapes these, this fails first."""
    from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

    from mnistx.slurm import _squeue_watcher

    assert isinstance(SlurmJob.watcher, SlurmInfoWatcher)
    watcher = _squeue_watcher()(delay_s=600)
    for job_id in ("7_0", "7_1", "7_2", "8"):
        watcher.register_job(job_id)
    assert watcher._make_command()[:2] == ["squeue", "--array"]
    watcher._info_dict.update(watcher.read_info(
        "JOBID|STATE|NODELIST\n7_0|RUNNING|n1\n7_1|PENDING|\n8|REQUEUED|\n"))
    states = {j: watcher.get_state(j, mode="cache") for j in ("7_0", "7_1", "7_2", "8")}
    assert states == {"7_0": "RUNNING", "7_1": "PENDING", "7_2": "COMPLETED", "8": "REQUEUED"}
    assert not watcher.is_done("7_1", mode="cache") and watcher.is_done("7_2", mode="cache")


def test_the_slurm_launcher_without_sbatch_is_one_message(tmp_path):
    proc = run_cli(tmp_path, "-m", "hydra/launcher=slurm", "optimizer.lr=1e-3,1e-2",
                   env={"PATH": str(tmp_path)}, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: hydra/launcher=slurm submits") and "sbatch" in proc.stderr
    assert not (tmp_path / "outputs").exists()
