"""Real multiruns (tiny dataset, 1 epoch) and the comparison report built from them."""

from __future__ import annotations

import csv
import json
import os
import statistics
from pathlib import Path

import pytest
import torch
from helpers import TINY_OVERRIDES, run_cli
from hydra import compose, initialize_config_module
from hydra._internal.callbacks import Callbacks
from hydra.core.global_hydra import GlobalHydra
from hydra.core.plugins import Plugins
from hydra.types import HydraContext
from omegaconf import OmegaConf, read_write
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mnistx.config.overrides import swept_keys_of
from mnistx.runs.claims import with_job_folders
from mnistx.runs.resolvers import job_dirname
from mnistx.sweeps.comparison import group_runs, load_runs, swept_keys

ONE_EPOCH = [*TINY_OVERRIDES, "trainer.max_epochs=1"]


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    """Composing a sweep's Hydra config claims its sweep folder under outputs/: there, not in
    the repository."""
    monkeypatch.chdir(tmp_path)


def _multirun(cwd: Path, data: Path, *args: str) -> Path:
    cwd.mkdir(parents=True, exist_ok=True)
    run_cli(cwd, "-m", f"data.data_dir={data}", *ONE_EPOCH, *args)
    (sweep_dir,) = (cwd / "outputs" / "multirun").glob("*/*")
    return sweep_dir


def _jobs(sweep_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/metrics.json")}


def _csv_rows(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "comparison.csv") as f:
        return list(csv.DictReader(f))


def test_grid_jobs_are_named_by_their_values_and_reported(tiny_data, tmp_path):
    sweep_dir = _multirun(
        tmp_path, tiny_data, "optimizer.lr=1e-3,1e-2", "model.activation=relu,tanh"
    )
    jobs = _jobs(sweep_dir)
    assert set(jobs) == {
        f"optimizer.lr={lr},model.activation={act}"
        for lr in ("0.001", "0.01")
        for act in ("relu", "tanh")
    }
    for name, m in jobs.items():
        assert m["status"] == "ok" and m["output_dir"] == str(sweep_dir / name)
        assert m["swept"] == dict(kv.split("=") for kv in name.split(","))
        assert len(m["history"]["val/acc"]) == 1
        assert (sweep_dir / name / "checkpoints" / "best.ckpt").exists()
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == ["multirun"]

    # The report holds exactly the runs' own numbers, best first.
    rows = _csv_rows(sweep_dir)
    assert len(rows) == 4
    by_setting = {
        f"optimizer.lr={r['optimizer.lr']},model.activation={r['model.activation']}": r
        for r in rows
    }
    for name, m in jobs.items():
        row = by_setting[name]
        assert float(row["val/acc_best"]) == pytest.approx(m["val/acc_best"])
        assert float(row["test/acc"]) == pytest.approx(m["test/acc"])
        assert int(row["params"]) == m["params"] and row["seeds"] == "1"
        assert row["status"] == "ok"
    accs = [float(r["val/acc_best"]) for r in rows]
    assert accs == sorted(accs, reverse=True)
    md = (sweep_dir / "comparison.md").read_text()
    assert md.splitlines()[0].startswith("| optimizer.lr | model.activation | val/acc_best")
    best = max(jobs.values(), key=lambda m: m["val/acc_best"])
    assert f"{100 * best['val/acc_best']:.2f}%" in md.splitlines()[2]
    for png in ("val_acc_curves.png", "acc_vs_optimizer.lr.png"):
        assert (sweep_dir / png).read_bytes()[:4] == b"\x89PNG"

    # TensorBoard: run names are the folder names; HParams carry each job's swept values.
    for name, m in jobs.items():
        ea = EventAccumulator(str(sweep_dir / name), size_guidance={"scalars": 0})
        ea.Reload()
        assert ea.Scalars("val/acc_best")[-1].value == pytest.approx(m["val/acc_best"])
        hparams = b"".join(ea.PluginTagToContent("hparams").values())
        assert m["swept"]["model.activation"].encode() in hparams


def test_failed_and_skipped_jobs_are_recorded_and_the_rest_kept(tiny_data, tmp_path):
    gpu = torch.cuda.is_available()
    sweep_dir = _multirun(
        tmp_path,
        tiny_data,
        "optimizer=sgd",
        "optimizer.lr=0.01,1e8",  # 1e8 makes the loss NaN
        "trainer.accelerator=cpu,mps" if gpu else "trainer.accelerator=cpu,gpu",
    )
    jobs = _jobs(sweep_dir)
    assert len(jobs) == 4
    other = "mps" if gpu else "gpu"
    ok = jobs["optimizer.lr=0.01,trainer.accelerator=cpu"]
    assert ok["status"] == "ok" and ok["test/acc"] > 0
    diverged = jobs["optimizer.lr=1e+08,trainer.accelerator=cpu"]
    assert diverged["status"] == "failed" and "diverged" in diverged["reason"]
    for lr in ("0.01", "1e+08"):
        skipped = jobs[f"optimizer.lr={lr},trainer.accelerator={other}"]
        assert skipped["status"] == "skipped"
        assert f"{other} not available on this machine" in skipped["reason"]

    rows = _csv_rows(sweep_dir)
    assert [r["status"] for r in rows] == ["ok", "failed", "skipped", "skipped"]
    assert float(rows[0]["val/acc_best"]) == pytest.approx(ok["val/acc_best"])
    assert rows[1]["reason"] == diverged["reason"]
    md = (sweep_dir / "comparison.md").read_text()
    assert "not available on this machine" in md and "diverged" in md


def test_seeds_are_pooled_as_mean_and_std(tiny_data, tmp_path):
    sweep_dir = _multirun(tmp_path, tiny_data, "seed=1,2", "optimizer.lr=1e-3,3e-3")
    jobs = _jobs(sweep_dir)
    assert len(jobs) == 4
    rows = _csv_rows(sweep_dir)
    assert len(rows) == 2 and "seed" not in rows[0]
    for row in rows:
        runs = [m for m in jobs.values() if m["swept"]["optimizer.lr"] == row["optimizer.lr"]]
        accs = [m["val/acc_best"] for m in runs]
        assert row["seeds"] == "2"
        assert float(row["val/acc_best"]) == pytest.approx(statistics.fmean(accs))
        if accs[0] != accs[1]:
            assert float(row["val/acc_best std"]) == pytest.approx(statistics.stdev(accs))
        tests = [m["test/acc"] for m in runs]
        assert float(row["test/acc"]) == pytest.approx(statistics.fmean(tests))


def test_joblib_launcher_runs_two_jobs_with_a_thread_share_each(tiny_data, tmp_path):
    sweep_dir = _multirun(
        tmp_path, tiny_data, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=1,2"
    )
    jobs = _jobs(sweep_dir)
    assert set(jobs) == {"seed=1", "seed=2"}
    cores = os.cpu_count() or 1
    for m in jobs.values():
        assert m["status"] == "ok"
        assert m["threads"] == max(1, cores // min(2, cores))
    # The workers wrote into the sweep folder the launcher made, not folders of their own.
    assert len(list((tmp_path / "outputs" / "multirun").glob("*/*"))) == 1
    assert (sweep_dir / "comparison.csv").exists()


def test_accelerators_preset_skips_what_is_missing(tiny_data, tmp_path):
    sweep_dir = _multirun(tmp_path, tiny_data, "sweep=accelerators")
    jobs = _jobs(sweep_dir)
    assert set(jobs) == {f"trainer.accelerator={a}" for a in ("cpu", "gpu", "mps")}
    assert jobs["trainer.accelerator=cpu"]["status"] == "ok"
    assert jobs["trainer.accelerator=cpu"]["epochs"] == 1  # the command line beats the preset
    assert jobs["trainer.accelerator=mps"]["status"] == "skipped"
    gpu = jobs["trainer.accelerator=gpu"]["status"]
    assert gpu == ("ok" if torch.cuda.is_available() else "skipped")


def _hydra_cfg(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_module("mnistx.conf", version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize(
    "preset,params",
    [
        ("optimizers", {"optimizer": "sgd,sgd_momentum,adam,rmsprop,adamw"}),
        (
            "activations",
            {"model": "mlp,cnn", "model.activation": "relu,sigmoid,tanh,leaky_relu,gelu"},
        ),
        (
            "learning_rates",
            {"optimizer": "sgd_momentum,adam,rmsprop", "optimizer.lr": "1e-4,1e-3,1e-2,1e-1,1.0"},
        ),
        ("accelerators", {"trainer.accelerator": "cpu,gpu,mps"}),
        ("models", {"model": "mlp,cnn"}),
        ("losses", {"loss": "cross_entropy,nll,mse,bce"}),
    ],
)
def test_sweep_presets_compose(preset, params):
    cfg = _hydra_cfg(f"sweep={preset}")
    assert OmegaConf.to_container(cfg.hydra.sweeper.params) == params
    assert swept_keys_of(cfg) == list(params)


def test_swept_keys_come_from_the_command_line_and_presets():
    cfg = _hydra_cfg("sweep=models")
    with read_write(cfg.hydra):  # as a multirun's own config holds its command line
        cfg.hydra.overrides.task = ["sweep=models", "optimizer.lr=1e-3,1e-2", "seed=3"]
    assert swept_keys_of(cfg) == ["optimizer.lr", "model"]


def test_slurm_launcher_composes_with_the_intended_parameters():
    overrides = [
        "hydra/launcher=slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.gpus_per_node=2",
        "hydra.launcher.timeout_min=30",
    ]
    GlobalHydra.instance().clear()
    with initialize_config_module("mnistx.conf", version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
        launcher = Plugins.instance().instantiate_launcher(
            hydra_context=HydraContext(
                config_loader=GlobalHydra.instance().config_loader(), callbacks=Callbacks()
            ),
            task_function=lambda cfg: None,
            config=cfg,
        )
    assert type(launcher).__name__ == "SlurmLauncher"
    assert launcher.params["partition"] == "gpu"
    assert launcher.params["gpus_per_node"] == 2
    assert launcher.params["timeout_min"] == 30
    assert launcher.params["cpus_per_task"] == 2 and launcher.params["mem_gb"] == 4  # defaults


def test_job_folders_are_named_by_swept_values_claimed_unique_and_safe(tmp_path):
    """The swept keys come from the sweep's own record (multirun.yaml, written before any
    job starts); the sweeper claims each job's folder and names it in the job's overrides."""
    task = ["optimizer.lr=0.00031622776601683794,0.1", "data.data_dir=/x/y,/z", "seed=1"]
    sweep = {"overrides": {"task": task, "hydra": []}, "sweeper": {"params": None}}
    OmegaConf.save({"hydra": sweep}, tmp_path / "multirun.yaml")
    overrides = ["optimizer.lr=0.00031622776601683794", "data.data_dir=/x/y", "seed=1"]
    assert job_dirname(0, overrides, str(tmp_path)) == "optimizer.lr=0.0003162,data.data_dir=_x_y"
    assert not (tmp_path / "optimizer.lr=0.0003162,data.data_dir=_x_y").exists()  # names only
    first, again = with_job_folders(tmp_path, [overrides, overrides])  # a repeated trial
    name = "optimizer.lr=0.0003162,data.data_dir=_x_y"
    assert first == [*overrides, f"hydra.sweep.subdir='{name}'"]
    assert again == [*overrides, f"hydra.sweep.subdir='{name}-1'"]
    assert (tmp_path / name).is_dir() and (tmp_path / f"{name}-1").is_dir()
    named = [*overrides, "hydra.sweep.subdir=mine"]  # a sweep being finished keeps its folder
    assert with_job_folders(tmp_path, [named]) == [named]
    unswept = tmp_path / "no-record"  # no sweep record: nothing is known to be swept
    assert job_dirname(7, overrides, str(unswept)) == "7"
    assert with_job_folders(unswept, [overrides]) == [overrides]


def test_group_runs_pools_seeds_and_keeps_failures():
    def run(lr, seed, status="ok", acc=None):
        return {
            "status": status,
            "val/acc_best": acc,
            "test/acc": acc,
            "reason": "boom",
            "dir": f"/s/{lr}-{seed}",
            "swept": {"optimizer.lr": lr, "seed": seed},
            "values": {"optimizer.lr": lr, "seed": seed},
        }

    runs = [
        run("0.1", "1", acc=0.9),
        run("0.1", "2", acc=0.8),
        run("1", "1", "failed"),
        run("0.01", "1", acc=0.95),
        run("0.01", "2", "failed"),
    ]
    keys = swept_keys(runs)
    assert keys == ["optimizer.lr", "seed"]
    rows = group_runs(runs, keys)
    assert [r["optimizer.lr"] for r in rows] == ["0.01", "0.1", "1"]
    assert rows[0]["val/acc_best"] == 0.95 and rows[0]["reason"] == "1 of 2 failed: boom"
    assert rows[1]["val/acc_best"] == pytest.approx(0.85)
    assert rows[1]["val/acc_best std"] == pytest.approx(statistics.stdev([0.9, 0.8]))
    assert rows[2]["status"] == "failed" and rows[2]["reason"] == "boom"


def test_compare_cli_errors_are_one_line(tmp_path):
    proc = run_cli(tmp_path, str(tmp_path / "nope"), module="mnistx.compare", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error:") and "is not a folder" in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = run_cli(tmp_path, "empty", module="mnistx.compare", check=False)
    assert proc.returncode == 1 and "No runs found" in proc.stderr


def test_compare_several_sweeps_and_an_unfinished_job(tiny_data, tmp_path):
    a = _multirun(tmp_path / "a", tiny_data, "optimizer.lr=1e-3,1e-2")
    unfinished = a / "optimizer.lr=0.1"
    (unfinished / ".hydra").mkdir(parents=True)
    (unfinished / ".hydra" / "overrides.yaml").write_text("- optimizer.lr=0.1\n")
    out = tmp_path / "report"
    proc = run_cli(tmp_path, str(a), str(a), "--out", str(out), module="mnistx.compare")
    assert "comparison.md" in proc.stdout
    rows = _csv_rows(out)
    assert len(rows) == 3
    # The same runs given twice are one sample each (issue 26), not two seeds.
    assert [r["seeds"] for r in rows[:2]] == ["1", "1"]
    assert rows[2]["status"] == "failed" and "did not finish" in rows[2]["reason"]
    assert len(load_runs([a])) == 3


def test_compare_skips_a_corrupt_metrics_file_with_a_warning(tiny_data, tmp_path):
    sweep_dir = _multirun(tmp_path, tiny_data, "optimizer.lr=1e-3,1e-2")
    (sweep_dir / "optimizer.lr=0.01" / "metrics.json").write_text('{"status": "ok", "te')
    proc = run_cli(tmp_path, str(sweep_dir), module="mnistx.compare")
    assert "Skipping" in proc.stderr and "optimizer.lr=0.01/metrics.json" in proc.stderr
    assert "Traceback" not in proc.stderr
    status = {r["optimizer.lr"]: r["status"] for r in _csv_rows(sweep_dir)}
    assert status == {"0.001": "ok", "0.01": "unreadable"}


def test_a_machines_local_config_is_picked_up_by_every_run(tmp_path, tiny_data):
    """conf/local/default.yaml (git-ignored) sets this machine's data folder and SLURM
    partition and account; the command line still wins, and without the file nothing changes."""
    import importlib.resources

    from helpers import run_cli

    local = Path(str(importlib.resources.files("mnistx.conf") / "local" / "default.yaml"))
    if local.exists():
        pytest.skip("this machine has its own conf/local/default.yaml; the test leaves it be")
    local.write_text(
        f"# @package _global_\ndata:\n  data_dir: {tiny_data}\n"
        "slurm:\n  partition: gpu-long\n  account: lab42\n"
    )
    try:
        cfg = _hydra_cfg("hydra/launcher=slurm")
        assert cfg.data.data_dir == str(tiny_data)
        assert cfg.hydra.launcher.partition == "gpu-long"
        assert cfg.hydra.launcher.account == "lab42"
        assert (
            _hydra_cfg("slurm.partition=cpu", "hydra/launcher=slurm").hydra.launcher.partition
            == "cpu"
        )
        # A real run finds its data through it, with no data.data_dir on the command line.
        run_cli(tmp_path, *ONE_EPOCH, f"hydra.run.dir={tmp_path / 'run'}")
        assert json.loads((tmp_path / "run" / "metrics.json").read_text())["status"] == "ok"
    finally:
        local.unlink()
    assert _hydra_cfg("hydra/launcher=slurm").hydra.launcher.partition is None


def test_a_sweep_command_freezes_its_imports_but_no_run(cli_here, tiny_data, tmp_path, monkeypatch):
    """Once per sweep command's process, before its first job builds anything, what is alive
    is frozen out of later collections; every job's module and Trainer are still collected."""
    import gc
    import weakref

    import lightning.pytorch as L

    from mnistx import fast_exit
    from mnistx.training import runtime
    from mnistx.training.module import ClassifierModule

    gc.unfreeze()  # this test process may have run a sweep before
    monkeypatch.setattr(runtime, "_frozen", [])
    monkeypatch.setattr(fast_exit, "command_process", lambda: True)  # as under script()
    events: list[str] = []
    runs: weakref.WeakSet = weakref.WeakSet()
    real_freeze, real_init = gc.freeze, ClassifierModule.__init__

    def freeze() -> None:
        live = [o for o in gc.get_objects() if type(o) in (L.Trainer, ClassifierModule)]
        events.append(f"freeze with {len(live)} runs alive")
        real_freeze()

    def init(self, *args, **kwargs) -> None:
        events.append("module")
        runs.add(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(gc, "freeze", freeze)
    monkeypatch.setattr(ClassifierModule, "__init__", init)
    try:
        code, _, err = cli_here(
            tmp_path, "-m", f"data.data_dir={tiny_data}", *ONE_EPOCH, "seed=1,2,3"
        )
        assert code == 0, err
        assert events[:2] == ["freeze with 0 runs alive", "module"] and events.count("module") == 3
        assert gc.get_freeze_count() > 0
        gc.collect()
        assert len(runs) == 0  # the jobs' modules (and what holds them) were not frozen
    finally:
        gc.unfreeze()


def test_a_sweep_from_a_program_importing_mnistx_freezes_nothing(cli_here, tiny_data, tmp_path):
    """A notebook's sweep (mnistx.api, cli() in the notebook's process) leaves the process's
    garbage collection as it was."""
    import gc

    gc.unfreeze()
    code, _, err = cli_here(tmp_path, "-m", f"data.data_dir={tiny_data}", *ONE_EPOCH, "seed=1,2")
    assert code == 0, err
    assert gc.get_freeze_count() == 0


def test_only_a_commands_own_process_is_a_command_process():
    import subprocess
    import sys

    code = (
        "from mnistx.fast_exit import command_process, exiting_fast\n"
        "print(command_process())\n"
        "with exiting_fast():\n"
        "    print(command_process())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.split() == ["False", "True"], proc.stderr
