"""A run folder's life through the CLI: create, fail into it, interrupt, resume, extend, finish,
resume again; a finished folder's files stay byte-identical whatever is aimed at it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import SAME_RESULTS, TINY_OVERRIDES, run_cli, snapshot, start_cli

from mnistx.runs.layout import resume_arg

# Small batches: many steps per epoch, so Ctrl-C lands mid-run.
ARGS = [*TINY_OVERRIDES, "data.batch_size=2", "trainer.max_epochs=3"]
SAME = (*SAME_RESULTS, "history")


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def _one_run(cwd: Path) -> Path:
    (run,) = (cwd / "outputs").glob("*/*")
    return run


def _start(cwd: Path, *args: str) -> Any:
    return start_cli(cwd, *args)  # as from a terminal


def _wait_for(path_glob, proc: Any) -> Path:
    deadline = time.time() + 120
    while time.time() < deadline:
        found = list(path_glob())
        if found:
            time.sleep(0.1)
            return found[0]
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    raise AssertionError("nothing appeared within 2 minutes")


def _bash(cwd: Path, line: str) -> subprocess.CompletedProcess:
    """A printed command, pasted into bash as a user would (with this interpreter)."""
    line = line.replace("python -m", f"{sys.executable} -m", 1)
    return subprocess.run(
        ["bash", "-c", line], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_run_folder_lifecycle_end_to_end(tiny_data, tmp_path):
    data = f"data.data_dir={tiny_data}"
    # Interrupt: Ctrl-C after the first checkpoint.
    proc = _start(tmp_path, data, *ARGS)
    _wait_for(lambda: (tmp_path / "outputs").glob("*/*/checkpoints/last.ckpt"), proc)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130, proc.stderr.read()
    run = _one_run(tmp_path)
    printed = re.search(r"interrupted: continue with (.+)", proc.stderr.read())[1]
    assert _metrics(run)["status"] == "interrupted"

    # Fail into it: another run aimed at the folder is refused and writes nothing.
    before = snapshot(run)
    for extra in (["optimizer.lr=-1"], []):
        proc = run_cli(tmp_path, data, *ARGS, f"hydra.run.dir={run}", *extra, check=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert "holds a run already" in proc.stderr and "resume=" in proc.stderr
        assert snapshot(run) == before

    # Resume with the printed command, pasted into bash: it finishes the run.
    proc = _bash(tmp_path, printed)
    assert proc.returncode == 0, proc.stderr
    finished = _metrics(run)
    assert finished["status"] == "ok" and finished["epochs"] == 3
    assert finished["overrides"] == [data, *ARGS]  # the run's own command line
    assert [r["from_epoch"] for r in finished["resumes"]] == [1]
    assert len(list((tmp_path / "outputs").glob("*/*"))) == 1

    # Resume again: it says the run is finished and changes no file.
    before = snapshot(run)
    proc = run_cli(tmp_path, f"resume={run}")
    assert "is finished (status ok, test accuracy" in proc.stdout and "max_epochs" in proc.stdout
    assert snapshot(run) == before
    proc = run_cli(tmp_path, f"resume={run}", "trainer.max_epochs=2", check=False)
    assert proc.returncode == 1 and "not above the 3 epochs" in proc.stderr
    assert snapshot(run) == before

    # Extend: train on to 4 epochs in the same folder, test; metrics.json is the whole run.
    proc = run_cli(tmp_path, f"resume={run}", "trainer.max_epochs=4")
    extended = _metrics(run)
    assert extended["status"] == "ok" and extended["epochs"] == 4
    assert all(len(v) == 4 for v in extended["history"].values())
    assert extended["history"]["val/acc"][:3] == finished["history"]["val/acc"]
    assert extended["overrides"] == finished["overrides"]
    assert [r["from_epoch"] for r in extended["resumes"]] == [1, 3]
    assert extended["resumes"][1]["overrides"] == ["trainer.max_epochs=4"]
    assert not list((run / "checkpoints").glob("*-v*.ckpt"))

    # And once more: finished, nothing changes.
    before = snapshot(run)
    run_cli(tmp_path, f"resume={run}")
    assert snapshot(run) == before


def test_extending_stretches_the_schedule_to_the_new_length(tiny_data, tmp_path):
    """A cosine that reached eta_min at the old end would train the new epochs at lr 0."""
    run_cli(tmp_path, f"data.data_dir={tiny_data}", *TINY_OVERRIDES, "trainer.max_epochs=1")
    run = _one_run(tmp_path)
    run_cli(tmp_path, f"resume={run}", "trainer.max_epochs=3")
    history = _metrics(run)["history"]
    assert len(set(history["val/loss"])) == 3  # every added epoch learned something


def test_a_run_killed_while_testing_resumes_to_complete_metrics(tiny_data, tmp_path):
    """A kill during the test phase leaves every checkpoint and no metrics.json."""
    run_cli(tmp_path, f"data.data_dir={tiny_data}", *TINY_OVERRIDES)
    run = _one_run(tmp_path)
    whole = _metrics(run)
    umask = os.umask(0)  # the atomic writer's files get the mode every other output gets
    os.umask(umask)
    for name in ("metrics.json", "hparams.yaml", "checkpoints/best.ckpt"):
        assert (run / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    (run / "metrics.json").unlink()
    run_cli(tmp_path, f"resume={run}")
    again = _metrics(run)
    assert again["status"] == "ok"
    for key in SAME:
        assert again[key] == whole[key] and again[key] is not None, key


def test_a_second_resume_is_refused_while_the_first_holds_the_run(tiny_data, tmp_path):
    run_cli(tmp_path, f"data.data_dir={tiny_data}", *TINY_OVERRIDES, "trainer.max_epochs=1")
    run = _one_run(tmp_path)
    holder = subprocess.Popen(  # what a training process does with its folder
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from mnistx.runs.lock import hold; hold(Path(sys.argv[1])); print('held', "
            "flush=True); time.sleep(120)",
            str(run),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    before = snapshot(run)
    proc = run_cli(tmp_path, f"resume={run}", "trainer.max_epochs=2", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"is in use: process {holder.pid} is training in it" in proc.stderr
    assert snapshot(run) == before
    holder.send_signal(signal.SIGKILL)  # a killed holder leaves no stuck lock
    holder.wait()
    run_cli(tmp_path, f"resume={run}", "trainer.max_epochs=2")
    assert _metrics(run)["epochs"] == 2


def test_resume_with_another_run_dir_is_refused_and_creates_nothing(tiny_data, tmp_path):
    run_cli(tmp_path, f"data.data_dir={tiny_data}", *TINY_OVERRIDES, "trainer.max_epochs=1")
    run = _one_run(tmp_path)
    before = snapshot(run)
    elsewhere = tmp_path / "elsewhere"
    proc = run_cli(
        tmp_path, f"resume={run}", "trainer.max_epochs=2", f"hydra.run.dir={elsewhere}", check=False
    )
    assert proc.returncode == 1 and "cannot send it elsewhere" in proc.stderr
    assert not elsewhere.exists() and snapshot(run) == before
    proc = run_cli(tmp_path, "-m", f"resume={run}", check=False)
    assert proc.returncode == 1 and "without -m" in proc.stderr
    assert not (tmp_path / "outputs" / "multirun").exists() and snapshot(run) == before


@pytest.mark.parametrize(
    "path",
    [
        "outputs/2026-12-02/10-00-00",
        "/tmp/x/multirun/optimizer.lr=0.01,model.activation=tanh",
        "/tmp/it's here/a b",
    ],
)
def test_printed_resume_commands_parse_back_to_the_folder(path):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    (word,) = subprocess.run(
        ["bash", "-c", f"printf '%s\\n' {resume_arg(path)}"],
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert OverridesParser.create().parse_override(word).value() == path
