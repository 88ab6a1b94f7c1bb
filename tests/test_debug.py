"""The debug presets (debug=fdr|limit|overfit|profiler): real runs on the tiny dataset, each
in outputs/debug/, away from the results users compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import TINY_OVERRIDES, run_cli
from omegaconf import OmegaConf

from mnistx.runs.compose import compose_config


def _debug_run(tmp_path: Path, data: Path, preset: str, *more: str) -> Path:
    run_cli(
        tmp_path,
        f"debug={preset}",
        f"data.data_dir={data}",
        *[o for o in TINY_OVERRIDES if not o.startswith("trainer.max_epochs")],
        *more,
    )
    (run,) = (tmp_path / "outputs" / "debug").glob("*/*")
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == ["debug"]  # nothing else
    return run


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_fdr_runs_one_batch_of_each_stage_and_saves_no_checkpoint(tiny_data, tmp_path):
    run = _debug_run(tmp_path, tiny_data, "fdr")
    metrics = _metrics(run)
    assert metrics["status"] == "ok" and metrics["epochs"] == 1
    assert metrics["tested_weights"] == "last" and metrics["test/acc"] is not None
    assert not list(run.glob("checkpoints/*.ckpt"))


def test_limit_trains_a_few_batches_per_epoch(tiny_data, tmp_path):
    run = _debug_run(tmp_path, tiny_data, "limit")
    assert _metrics(run)["epochs"] == 3
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 3 * 5  # 5 of the 16 batches per epoch


def test_overfit_learns_the_same_two_batches(tiny_data, tmp_path):
    run = _debug_run(tmp_path, tiny_data, "overfit")
    losses = _metrics(run)["history"]["train/loss"]
    assert len(losses) == 30
    assert losses[-1] < 0.1 * losses[0]  # memorised: the same 64 images every epoch


def test_profiler_writes_its_report_into_the_run_folder(tiny_data, tmp_path):
    run = _debug_run(tmp_path, tiny_data, "profiler")
    report = (run / "fit-profiler.txt").read_text()
    assert "run_training_epoch" in report and "Mean duration" in report


@pytest.mark.parametrize("preset", ["fdr", "limit", "overfit", "profiler", "default"])
def test_debug_presets_compose_without_claiming_folders(preset, tmp_path, monkeypatch):
    """A preset that moves the run folder must not leave the default one behind (OmegaConf
    resolves a value it is about to overwrite)."""
    monkeypatch.chdir(tmp_path)
    cfg = compose_config([f"debug={preset}", "output_dir=/unused"], with_hydra=True)
    raw = OmegaConf.to_container(cfg.hydra, resolve=False)  # resolving would claim them
    assert ",outputs/debug/" in raw["run"]["dir"]
    assert "{unique_dir:outputs/debug/multirun/" in raw["sweep"]["dir"]
    assert not (tmp_path / "outputs").exists()
    optuna = compose_config(["hparams_search=optuna", "output_dir=/unused"], with_hydra=True)
    assert OmegaConf.to_container(optuna.hydra, resolve=False)["sweep"]["dir"] == (
        "outputs/optuna/${hydra.sweeper.study_name}"
    )
    assert not (tmp_path / "outputs").exists()
