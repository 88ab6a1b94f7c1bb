"""Lightning DDP on CPU: 2 processes (gloo), sharded in-memory data, one run folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

from helpers import TINY_OVERRIDES, run_cli, two_node_ddp

TESTS = Path(__file__).parent


def test_two_process_ddp_shards_the_data_and_writes_one_run(tiny_data, tmp_path):
    seen = tmp_path / "seen"
    seen.mkdir()
    cwd = tmp_path / "work"
    cwd.mkdir()
    proc = run_cli(
        cwd,
        f"data.data_dir={tiny_data}",
        *TINY_OVERRIDES,
        "trainer=ddp",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
        "+callbacks.recorder._target_=index_recorder.IndexRecorder",
        "trusted_targets=[index_recorder.IndexRecorder]",
        f"+callbacks.recorder.out_dir={seen}",
        env={"PYTHONPATH": str(TESTS)},
    )
    assert "Traceback" not in proc.stderr
    train_size = 600 - 100  # tiny dataset minus data.val_size
    for epoch in (0, 1):
        shards = [json.loads((seen / f"epoch{epoch}-rank{r}.json").read_text()) for r in (0, 1)]
        assert len(shards[0]) == len(shards[1]) == train_size // 2
        assert not set(shards[0]) & set(shards[1])
        val = set(json.loads((seen / "val-rows.json").read_text()))
        # Together: every training row once, no validation row (rows of the 600 images).
        assert len(set(shards[0]) | set(shards[1])) == train_size
        assert set(shards[0]) | set(shards[1]) == set(range(600)) - val
    assert shards[0] != json.loads((seen / "epoch0-rank0.json").read_text())  # reshuffled

    runs = list((cwd / "outputs").glob("*/*"))
    assert len(runs) == 1  # rank 1 wrote into rank 0's folder, not a folder of its own
    run = runs[0]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["epochs"] == 2
    assert len(list(run.glob("events.out.tfevents.*"))) >= 1
    assert not list(run.glob("*/events.out.tfevents.*"))
    assert len(list((cwd / "outputs").rglob("metrics.json"))) == 1


def test_ddp_jobs_in_a_multirun_keep_one_folder_each(tiny_data, tmp_path):
    run_cli(
        tmp_path,
        "-m",
        f"data.data_dir={tiny_data}",
        *TINY_OVERRIDES,
        "trainer.max_epochs=1",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "seed=1,2",
        "hydra.callbacks.sweep.report=false",
    )
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == ["multirun"]
    (sweep_dir,) = (tmp_path / "outputs" / "multirun").glob("*/*")
    jobs = sorted(p.name for p in sweep_dir.iterdir() if p.is_dir())
    assert jobs == ["seed=1", "seed=2"]
    for job in jobs:
        metrics = json.loads((sweep_dir / job / "metrics.json").read_text())
        assert metrics["status"] == "ok"
    assert len(list(tmp_path.rglob("metrics.json"))) == 2


def test_torchrun_across_two_nodes_on_one_host_trains_one_run(tiny_data, tmp_path):
    """The README's multi-node torchrun command, as two "nodes" of one process each on this
    host (--nnodes=2 --node-rank=0|1 --master-addr=127.0.0.1), gloo on the CPU."""
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    seen, run = tmp_path / "seen", tmp_path / "outputs" / "ddp-run1"
    seen.mkdir()
    torchrun = Path(sys.executable).with_name("torchrun")
    nodes = [
        subprocess.Popen(
            [
                str(torchrun),
                "--nnodes=2",
                "--nproc-per-node=1",
                f"--node-rank={rank}",
                "--master-addr=127.0.0.1",
                f"--master-port={port}",
                "-m",
                "mnistx.train",
                *two_node_ddp(tiny_data, seen),
                f"hydra.run.dir={run}",
            ],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(TESTS)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    errors = [node.communicate(timeout=300)[1] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], errors
    assert json.loads((run / "metrics.json").read_text())["status"] == "ok"
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == ["ddp-run1"]
    val = set(json.loads((seen / "val-rows.json").read_text()))
    for epoch in (0, 1):
        shards = [json.loads((seen / f"epoch{epoch}-rank{r}.json").read_text()) for r in (0, 1)]
        assert not set(shards[0]) & set(shards[1])
        assert set(shards[0]) | set(shards[1]) == set(range(600)) - val
