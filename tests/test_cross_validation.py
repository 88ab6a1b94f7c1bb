"""k-fold cross-validation: `-m cv.folds=k` trains a job per fold (grid or Optuna) and the
report gives each setting's mean, 95% interval and per-fold scores; the folds are stratified,
seeded, disjoint and cover the official training set."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import torch
import torchvision
import yaml
from helpers import TINY_OVERRIDES, run_cli

from mnistx.data.datamodule import MNISTDataModule
from mnistx.data.folds import check_folds, cv_split, fold_numbers
from mnistx.errors import UserError
from mnistx.sweeps.statistics import ci95


def test_folds_are_stratified_seeded_disjoint_and_cover_mnist(mnist_dir):
    labels = torchvision.datasets.MNIST(mnist_dir, train=True).targets
    fold_of = fold_numbers(labels, 5, seed=42)
    assert torch.equal(fold_of, fold_numbers(labels, 5, seed=42))  # seeded
    assert not torch.equal(fold_of, fold_numbers(labels, 5, seed=43))
    sizes = torch.bincount(fold_of, minlength=5)
    assert sizes.sum() == 60_000 and sizes.max() - sizes.min() <= 1  # cover, balanced
    for c in range(10):  # each class spread over the folds within one image
        counts = torch.bincount(fold_of[labels == c], minlength=5)
        assert counts.max() - counts.min() <= 1
    seen = torch.zeros(60_000, dtype=torch.long)
    for fold in range(5):
        val, train = cv_split(labels, 5, fold, seed=42)
        assert set(val.tolist()).isdisjoint(train.tolist())
        assert len(val) + len(train) == 60_000
        seen[val] += 1
    assert torch.equal(seen, torch.ones(60_000, dtype=torch.long))  # each image validates once


def test_the_data_module_validates_on_its_fold(tiny_data):
    dm = MNISTDataModule(data_dir=str(tiny_data), folds=3, fold=1, val_size=100, seed=7)
    dm.setup()
    val, train = dm.splits["val"].index, dm.splits["train"].index
    expected_val, expected_train = cv_split(dm.splits["val"].y, 3, 1, seed=7)
    assert torch.equal(val, expected_val) and torch.equal(train, expected_train)
    assert len(val) == 200  # a third of the 600 training images, not data.val_size
    assert len(dm.splits["test"].y) == 200  # the official test set, untouched


@pytest.mark.parametrize(
    "folds,fold,text",
    [
        (5, None, "cv.folds=5 trains one job per fold: run it as a sweep"),
        (1, 0, "cv.folds=1 must be an integer >= 2"),
        (5, 5, "cv.fold=5 must be a fold number from 0 to 4"),
        (None, 2, "cv.fold=2 picks one fold of a cross-validation, but cv.folds is not set"),
        ("five", 0, "cv.folds=five must be an integer >= 2"),
    ],
)
def test_bad_cv_settings_are_one_line(folds, fold, text):
    with pytest.raises(UserError, match=text):
        check_folds(folds, fold)


@pytest.mark.parametrize(
    "args,text",
    [
        (["-m", "cv.folds=abc"], "cv.folds=abc must be an integer >= 2"),
        (["-m", "hparams_search=optuna", "cv.folds=1"], "cv.folds=1 must be an integer >= 2"),
        (["-m", "cv=5"], "cv=5 replaces the cv settings (cv.folds, cv.fold)"),
        (["cv.folds=5"], "cv.folds=5 trains one job per fold: run it as a sweep"),
    ],
)
def test_bad_cv_settings_on_the_command_line_exit_1_with_one_line(tiny_data, tmp_path, args, text):
    proc = run_cli(tmp_path, *args, f"data.data_dir={tiny_data}", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert text in line


def _jobs(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")}


def test_a_grid_sweep_cross_validates_each_setting(tiny_data, tmp_path):
    args = ["-m", f"data.data_dir={tiny_data}", *TINY_OVERRIDES, "cv.folds=3"]
    run_cli(tmp_path, *args, "optimizer.lr=1e-3,1e-2", "hydra.sweep.dir=cv")
    jobs = _jobs(tmp_path / "cv")
    assert sorted(jobs) == [
        f"optimizer.lr={lr},cv.fold={f}" for lr in ("0.001", "0.01") for f in range(3)
    ]
    assert all(j["status"] == "ok" and j["test/acc"] is not None for j in jobs.values())
    report = (tmp_path / "cv" / "comparison.md").read_text()
    section = report.split("Cross-validation:")[1]
    for lr in ("0.001", "0.01"):
        folds = [jobs[f"optimizer.lr={lr},cv.fold={f}"] for f in range(3)]
        val = [j["val/acc_best"] for j in folds]
        (line,) = [ln for ln in section.splitlines() if ln.startswith(f"| optimizer.lr={lr} |")]
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[1] == "3"
        assert cells[2] == f"{100 * sum(val) / 3:.2f}%"
        assert cells[3] == f"± {100 * ci95(val):.2f}"
        assert cells[4] == " ".join(f"{f}: {100 * v:.2f}" for f, v in enumerate(val))
        test = [j["test/acc"] for j in folds]
        assert cells[5] == " ".join(f"{f}: {100 * t:.2f}" for f, t in enumerate(test))
    # The main table pools the folds of a setting, as it pools seeds: one row per setting.
    rows = (tmp_path / "cv" / "comparison.csv").read_text().splitlines()
    assert len(rows) == 3 and "cv.fold" not in rows[0]
    # The folds of one setting differ; the same fold of two settings is the same split.
    first = [jobs[f"optimizer.lr=0.001,cv.fold={f}"]["val/acc_best"] for f in range(3)]
    assert len(set(first)) > 1


def test_an_optuna_trial_is_the_mean_of_its_folds(tiny_data, tmp_path):
    args = ["-m", "hparams_search=optuna", f"data.data_dir={tiny_data}", *TINY_OVERRIDES]
    args += ["trainer.max_epochs=1", "hydra.sweeper.n_trials=2", "cv.folds=2"]
    run_cli(tmp_path, *args, "hydra.sweep.dir=study")
    study_dir = tmp_path / "study"
    jobs = _jobs(study_dir)
    assert len(jobs) == 4 and {name[-9:] for name in jobs} == {"cv.fold=0", "cv.fold=1"}
    study = optuna.load_study(study_name="mnistx", storage=f"sqlite:///{study_dir / 'optuna.db'}")
    for trial in study.trials:
        folders = trial.user_attrs["mnistx.folders"]
        folds = [json.loads((Path(f) / "metrics.json").read_text()) for f in folders]
        assert [Path(f).name[-1] for f in folders] == ["0", "1"]
        assert trial.value == pytest.approx(sum(m["val/acc_best"] for m in folds) / 2)
        assert trial.intermediate_values == {}  # folds report no epochs: nothing to prune on
    best = yaml.safe_load((study_dir / "best.yaml").read_text())
    assert best["val/acc_best"] == pytest.approx(max(t.value for t in study.trials))
    assert "cv." not in best["command"]  # the best setting trained once, on the usual split
    assert "Cross-validation:" in (study_dir / "comparison.md").read_text()
