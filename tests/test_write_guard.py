"""No command writes over another run's or sweep's files (issue 26, part 2): one guard
(mnistx.runs.guard) decides for predict --show, eval --out, compare --out/--tag and
hydra.run.dir/hydra.sweep.dir; each refusal is one paragraph and changes nothing (hashed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import TINY_OVERRIDES, run_cli, snapshot, start_cli

# The tests share one module fixture (`place`, ~27 s): on one xdist worker it is built once.
pytestmark = pytest.mark.xdist_group("write_guard")


@pytest.fixture(scope="module")
def place(tiny_data, tmp_path_factory) -> Path:
    """Two runs (a, b, b evaluated), a two-job sweep s1 and s2, a copy of it."""
    cwd = tmp_path_factory.mktemp("place")
    for name in ("a", "b"):
        run_cli(cwd, f"data.data_dir={tiny_data}", *TINY_OVERRIDES, f"hydra.run.dir={name}")
    run_cli(cwd, "run=a", module="mnistx.eval")
    run_cli(
        cwd, "-m", f"data.data_dir={tiny_data}", *TINY_OVERRIDES, "seed=1,2", "hydra.sweep.dir=s1"
    )
    shutil.copytree(cwd / "s1", cwd / "s2")
    (cwd / "img.png").write_bytes((cwd / "s1" / "val_acc_curves.png").read_bytes())
    return cwd


def _all(place: Path) -> dict[str, str]:
    return {name: str(snapshot(place / name)) for name in ("a", "b", "s1", "s2")}


def _refused(proc, place: Path, before: dict[str, str], *words: str) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error:"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr
    assert _all(place) == before


@pytest.mark.parametrize(
    "target",
    [
        "a/checkpoints/best.ckpt",
        "a/.hydra/config.yaml",
        "a/eval/best/eval.json",
        "a/new-sheet.png",
        "s1/multirun.yaml",
        "s1/comparison.md",
        "s1/seed=1/metrics.json",
    ],
)
def test_predict_show_never_writes_into_a_run_or_sweep(place, target):
    before = _all(place)
    proc = run_cli(
        place, "run=a", "images=img.png", "--show", target, module="mnistx.predict", check=False
    )
    _refused(proc, place, before, "never writes into another run's or sweep's files")


def test_predict_show_replaces_an_outside_file_only_when_told(place, tmp_path):
    sheet = tmp_path / "sheet.png"
    sheet.write_bytes(b"mine")
    before = _all(place)
    proc = run_cli(
        place, "run=a", "images=img.png", "--show", str(sheet), module="mnistx.predict", check=False
    )
    _refused(proc, place, before, "exists already", "--overwrite")
    assert sheet.read_bytes() == b"mine"
    run_cli(
        place,
        "run=a",
        "images=img.png",
        "--show",
        str(sheet),
        "--overwrite",
        module="mnistx.predict",
    )
    assert sheet.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "args, words",
    [
        (["run=b", "--out", "a/eval/best"], ["is inside", "a run folder"]),
        (["run=a", "ckpt=b/checkpoints/best.ckpt"], ["is not one of run=a's checkpoints"]),
        (["run=a", "--out", ""], ["--out is empty"]),
        (["run=b", "--out", "s1"], ["a sweep folder"]),
    ],
)
def test_eval_writes_only_its_own_folder(place, args, words):
    before = _all(place)
    proc = run_cli(place, *args, module="mnistx.eval", check=False)
    _refused(proc, place, before, *words)


@pytest.mark.parametrize(
    "args, words",
    [
        (["hydra.run.dir=s1"], ["is a sweep's folder"]),
        (["hydra.run.dir=a/eval/best"], ["lies inside", "a run folder"]),
        (["-m", "seed=3", "hydra.sweep.dir='s1/seed=1'"], ["is a single run's folder"]),
        (["-m", "seed=3", "hydra.sweep.dir=a/sub"], ["lies inside"]),
    ],
)
def test_a_new_run_or_sweep_never_goes_inside_another(place, tiny_data, args, words):
    before = _all(place)
    flags = [a for a in args if a == "-m"]
    rest = [a for a in args if a != "-m"]
    proc = run_cli(place, *flags, f"data.data_dir={tiny_data}", *TINY_OVERRIDES, *rest, check=False)
    _refused(proc, place, before, *words)


@pytest.mark.parametrize(
    "args, words",
    [
        (["s2", "--out", "s1"], ["is inside", "a sweep folder"]),
        (["s1", "--tag", "../escape"], ["is not a tag"]),
        (["s1", "--out", "a"], ["a run folder"]),
        (["s1", "--out", "img.png"], ["is a file"]),
    ],
)
def test_compare_refuses_to_write_into_another_sweep_or_run(place, args, words):
    before = _all(place)
    proc = run_cli(place, *args, module="mnistx.compare", check=False)
    _refused(proc, place, before, *words)
    assert not (place.parent / "escape").exists()


def test_reports_of_several_sweeps_or_of_a_run_go_to_a_new_folder(place):
    before = _all(place)
    for args in (["s1", "s2"], ["a"]):
        proc = run_cli(place, *args, module="mnistx.compare")
        assert "a new folder of its own" in proc.stdout
        assert _all(place) == before
    reports = sorted((place / "outputs" / "comparisons").glob("*/comparison.md"))
    assert len(reports) == 2


def test_compare_out_must_be_new_unless_overwrite(place, tmp_path):
    out = tmp_path / "report"
    run_cli(place, "s1", "--out", str(out), module="mnistx.compare")
    first = (out / "comparison.md").read_text()
    proc = run_cli(place, "s1", "--out", str(out), module="mnistx.compare", check=False)
    assert proc.returncode == 1 and "--overwrite" in proc.stderr
    run_cli(place, "s1", "--out", str(out), "--overwrite", module="mnistx.compare")
    assert (out / "comparison.md").read_text() == first


def test_an_extended_run_keeps_one_best_checkpoint_that_every_reader_takes(place):
    run = place / "ext"
    shutil.copytree(place / "b", run)
    original = snapshot(place / "b")
    for epochs in (4, 6):
        run_cli(place, "resume=ext", f"trainer.max_epochs={epochs}")
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
        metrics = json.loads((run / "metrics.json").read_text())
        assert Path(metrics["best_checkpoint"]).name == "best.ckpt"
        run_cli(place, "run=ext", "--out", f"ev{epochs}", module="mnistx.eval")
        report = json.loads((place / f"ev{epochs}" / "eval.json").read_text())
        assert report["test/acc"] == pytest.approx(metrics["test/acc"], abs=1e-6)
    assert snapshot(place / "b") == original  # the copy's original is not touched


@pytest.mark.parametrize("when", ["train", "test"])
def test_sigterm_in_any_phase_exits_non_zero_and_leaves_a_resumable_record(
    tiny_data, tmp_path, when
):
    tests = Path(__file__).parent
    proc = run_cli(
        tmp_path,
        f"data.data_dir={tiny_data}",
        *TINY_OVERRIDES,
        "data.eval_batch_size=50",
        "hydra.run.dir=run",
        "trusted_targets=[signal_sender.SendSignal]",
        "+callbacks.kill._target_=signal_sender.SendSignal",
        f"+callbacks.kill.when={when}",
        check=False,
        env={"PYTHONPATH": str(tests), "SEND_SIGNAL": "1"},
    )
    assert proc.returncode == 143, proc.stderr
    assert "Traceback" not in proc.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["signal"] == "SIGTERM"
    assert metrics["phase"] == ("training" if when == "train" else "testing")
    assert "stopped by SIGTERM" in metrics["reason"]
    if when == "test":  # fitted, untested: the resume tests it
        trust = "trusted_targets=[signal_sender.SendSignal]"  # the file's own is never honoured
        run_cli(tmp_path, "resume=run", trust, env={"PYTHONPATH": str(tests)})
        assert json.loads((tmp_path / "run" / "metrics.json").read_text())["status"] == "ok"


def test_the_same_sweep_started_twice_at_once_runs_each_job_once(tiny_data, tmp_path):
    import time

    from mnistx.runs.lock import in_use

    args = ["-m", f"data.data_dir={tiny_data}", *TINY_OVERRIDES, "seed=1,2", "hydra.sweep.dir=sw"]
    first = start_cli(tmp_path, *args)
    deadline = time.time() + 60
    while in_use(tmp_path / "sw") is None and time.time() < deadline:
        time.sleep(0.05)
    second = run_cli(tmp_path, *args, check=False)
    assert first.wait(timeout=300) == 0, first.stderr.read() if first.stderr else ""
    assert second.returncode == 1 and "is in use" in second.stderr, second.stderr
    jobs = sorted(p.name for p in (tmp_path / "sw").iterdir() if p.is_dir())
    assert jobs == ["seed=1", "seed=2"]  # no seed=1-1 copies


def test_a_sweep_compared_with_its_copy_counts_each_sample_once(place, tmp_path):
    from mnistx.sweeps.comparison import compare

    alone = compare([place / "s1"], out=tmp_path / "alone")
    both = compare([place / "s1", place / "s2"], out=tmp_path / "both")
    assert [r["seeds"] for r in both] == [r["seeds"] for r in alone] == [2]
    assert both[0]["duplicates"] == 2 and "counted once" in both[0]["reason"]
    assert both[0].get("test/acc_ci95") == alone[0].get("test/acc_ci95")
