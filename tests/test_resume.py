"""Interrupted runs continue exactly: SIGKILL mid-epoch or Ctrl-C, then resume=<run dir>."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import SAME_RESULTS, TINY_OVERRIDES, run_cli, start_cli

# Its module fixtures train: all its tests on one xdist worker, so they train once.
pytestmark = pytest.mark.xdist_group("resume")

# Small batches and dropout: many steps per epoch, and RNG that must be restored.
ARGS = [*TINY_OVERRIDES, "data.batch_size=2", "trainer.max_epochs=6", "model.dropout=0.2"]
SAME = SAME_RESULTS


def _start(cwd: Path, data: Path) -> Any:
    return start_cli(cwd, f"data.data_dir={data}", *ARGS)  # as from a terminal


def _wait_for_epoch(cwd: Path, proc: Any) -> Path:
    """The run folder, once its first last.ckpt is on disk (training is then in epoch 2+)."""
    deadline = time.time() + 120
    while time.time() < deadline:
        found = list((cwd / "outputs").glob("*/*/checkpoints/last.ckpt"))
        if found:
            time.sleep(0.1)  # into the next epoch
            return found[0].parents[1]
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    raise AssertionError("no checkpoint within 2 minutes")


@pytest.fixture(scope="module")
def uninterrupted(tiny_data, tmp_path_factory) -> dict:
    cwd = tmp_path_factory.mktemp("straight")
    run_cli(cwd, f"data.data_dir={tiny_data}", *ARGS)
    (metrics,) = (cwd / "outputs").glob("*/*/metrics.json")
    return json.loads(metrics.read_text())


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["sigkill", "ctrl_c"])
def test_resume_after_kill_or_ctrl_c_equals_an_uninterrupted_run(
    tiny_data, tmp_path, uninterrupted, sig
):
    proc = _start(tmp_path, tiny_data)
    run = _wait_for_epoch(tmp_path, proc)
    proc.send_signal(sig)
    code = proc.wait(timeout=60)
    if code == 0:
        pytest.skip("the run finished before the signal arrived")
    metrics_file = run / "metrics.json"
    if sig == signal.SIGINT:
        assert code == 130
        stopped = json.loads(metrics_file.read_text())
        assert stopped["status"] == "interrupted" and f"resume={run}" in stopped["reason"]
    else:
        assert code == -signal.SIGKILL and not metrics_file.exists()
    config_before = (run / ".hydra" / "config.yaml").read_text()

    proc = run_cli(tmp_path, f"resume={run}")
    assert "Traceback" not in proc.stderr
    assert len(list((tmp_path / "outputs").glob("*/*"))) == 1  # the same folder, no new one
    assert (run / ".hydra" / "config.yaml").read_text() == config_before
    resumed = json.loads(metrics_file.read_text())
    assert resumed["status"] == "ok"
    for key in SAME:
        assert resumed[key] == uninterrupted[key], key  # equal, not approximately
    assert resumed["history"] == uninterrupted["history"]


def test_resume_errors_leave_the_run_as_it_was(tiny_data, tmp_path):
    run_cli(tmp_path, f"data.data_dir={tiny_data}", *TINY_OVERRIDES, "trainer.max_epochs=1")
    (run,) = (tmp_path / "outputs").glob("*/*")
    before = (run / "metrics.json").read_text()
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"\x00" * 100)
    for args, text in [
        ([f"resume={tmp_path}"], "not a run folder"),
        ([f"resume={run}", f"ckpt_path={bad}"], "Cannot read checkpoint"),
    ]:
        proc = run_cli(tmp_path, *args, check=False)
        assert proc.returncode == 1 and text in proc.stderr and "Traceback" not in proc.stderr
    assert (run / "metrics.json").read_text() == before
    assert bad.read_bytes() == b"\x00" * 100


def test_a_run_is_deterministic_under_its_seed(tiny_data, tmp_path, uninterrupted):
    """The same command line twice gives the same numbers, every epoch (the repo's one
    determinism test: resume, requeue and sweep tests compare against such a run)."""
    run_cli(tmp_path, f"data.data_dir={tiny_data}", *ARGS)
    (metrics,) = (tmp_path / "outputs").glob("*/*/metrics.json")
    again = json.loads(metrics.read_text())
    for key in SAME:
        assert again[key] == uninterrupted[key], key
    assert again["history"] == uninterrupted["history"]
