"""`python -m mnistx.train tune=lr_find`: Lightning's range test on the configured model, its
curve and suggestion in the run folder, and a printed command that trains with it."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from helpers import TINY_OVERRIDES, run_cli
from omegaconf import OmegaConf

from mnistx.errors import UserError
from mnistx.training.lr_find import lr_find


def test_lr_find_writes_the_curve_and_prints_a_command_that_trains_with_it(tiny_data, tmp_path):
    args = [f"data.data_dir={tiny_data}", *TINY_OVERRIDES, "optimizer=sgd", "scheduler=step"]
    proc = run_cli(tmp_path, *args, "tune=lr_find", "hydra.run.dir=lr")
    run = tmp_path / "lr"
    record = json.loads((run / "lr_find.json").read_text())
    assert (run / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # One point per learning rate tried, rising from min_lr (until the loss diverged).
    lrs, losses = record["lr"], record["loss"]
    assert 20 <= record["points"] == len(lrs) == len(losses) <= 100
    assert lrs == sorted(lrs) and lrs[0] == pytest.approx(1e-6, rel=0.2) and lrs[-1] <= 1.0
    assert record["min_lr"] < record["suggestion"] < record["max_lr"]
    # Nothing of a training run: no checkpoints, no tracker files, no metrics.json.
    assert not (run / "checkpoints").exists() and not list(run.glob("events.out.*"))
    assert not (run / "metrics.json").exists() and not list(run.glob(".lr_find*"))
    # The printed command is the user's, without tune=, with the suggestion; it trains.
    command = proc.stdout.strip().splitlines()[-1].strip()
    assert command == record["command"]
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "mnistx.train"] and "tune=lr_find" not in words
    assert f"optimizer.lr={record['suggestion']:.3g}" == words[-1] and "optimizer=sgd" in words
    run_cli(tmp_path, *words[3:], "hydra.run.dir=trained")
    trained = OmegaConf.load(tmp_path / "trained" / ".hydra" / "config.yaml")
    assert trained.optimizer.lr == pytest.approx(record["suggestion"], rel=1e-2)
    assert json.loads((tmp_path / "trained" / "metrics.json").read_text())["status"] == "ok"


@pytest.mark.parametrize(
    "override,text",
    [
        ("tune.mode=cubic", "tune.mode='cubic' must be exponential"),
        ("tune.num_training=5", "tune.num_training=5 must be an integer >= 20"),
        ("tune.max_lr=1e-7", "tune.max_lr=1e-07 must be a learning rate above tune.min_lr"),
        ("tune.min_lr=0", "tune.min_lr=0 must be a positive learning rate"),
        ("tune.early_stop_threshold=1", "tune.early_stop_threshold=1 must be a number above 1"),
        ("tune.kind=batch_size", "tune.kind='batch_size' is not a tuning mnistx runs"),
    ],
)
def test_bad_tune_settings_are_user_errors(make_cfg, override, text):
    cfg = make_cfg("tune=lr_find", override)
    with pytest.raises(UserError, match=text.replace("[", r"\[").replace("(", r"\(")):
        lr_find(cfg, [])
    assert not list(Path(cfg.output_dir).glob("*"))  # checked before anything is written


def test_lr_find_does_not_sweep_or_continue_a_run(tiny_data, tmp_path):
    data = f"data.data_dir={tiny_data}"
    swept = run_cli(tmp_path, "-m", data, "tune=lr_find", "model=mlp,cnn", check=False)
    assert swept.returncode == 1 and "does not sweep" in swept.stderr
    assert "Traceback" not in swept.stderr and not (tmp_path / "outputs").exists()
