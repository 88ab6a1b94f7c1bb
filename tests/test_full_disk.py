"""Checkpoints are staged in their own folder and a full disk is one paragraph (issue 26,
part 3): a full output disk leaves the previous checkpoint whole and the run resumable, and a
full $TMPDIR does not matter. Real tmpfs mounts (root only; skipped elsewhere)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from helpers import TINY_OVERRIDES, run_cli, snapshot


@pytest.fixture
def small_disk(tmp_path):
    mounts = []

    def _mount(name: str, size: str) -> Path:
        point = tmp_path / name
        point.mkdir()
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
            capture_output=True,
        )
        if proc.returncode != 0:
            pytest.skip("cannot mount a tmpfs here (needs root)")
        mounts.append(point)
        return point

    yield _mount
    for point in mounts:
        subprocess.run(["umount", "-l", str(point)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    filler = disk / "filler"
    filler.write_bytes(b"\0" * max(free - leave, 0))
    return filler


def test_a_full_output_disk_keeps_the_last_checkpoint_and_the_run_resumable(tiny_data, small_disk):
    disk = small_disk("out", "16M")
    tmp = small_disk("tmp", "1M")
    _fill(tmp, 0)  # a full $TMPDIR: checkpoints never go through it
    env = {"TMPDIR": str(tmp)}
    over = [f"data.data_dir={tiny_data}", *TINY_OVERRIDES]
    run_cli(disk, *over, "trainer.max_epochs=1", "hydra.run.dir=run", env=env)
    run = disk / "run"
    kept = snapshot(run / "checkpoints")
    filler = _fill(disk, 200_000)  # room for logs, not for a 1.6 MB checkpoint
    proc = run_cli(disk, "resume=run", "trainer.max_epochs=3", check=False, env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "is full" in proc.stderr and "resume=" in proc.stderr
    assert snapshot(run / "checkpoints") == kept  # whole, no stray temporary file
    filler.unlink()
    run_cli(disk, "resume=run", "trainer.max_epochs=3", env=env)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["epochs"] == 3
