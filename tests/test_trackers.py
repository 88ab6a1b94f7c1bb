"""Every tracker, read back with its own client or files: MLflow's MlflowClient on the SQLite
store, the CSV file, the W&B offline run folder, TensorBoard's event files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from helpers import TINY_OVERRIDES, run_cli, wandb_run

TINY = [o for o in TINY_OVERRIDES if not o.startswith(("callbacks.", "trainer.max_epochs"))]


def _only_run(tmp_path: Path) -> Path:
    (run,) = (tmp_path / "outputs").glob("20*/*")
    return run


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_every_tracker_records_the_run_and_a_resume_continues_it(tiny_data, tmp_path):
    """One run with all four trackers, then its extension by resume=: each read back with its
    own client or files, each holding the same numbers as metrics.json."""
    from mlflow.tracking import MlflowClient

    args = [f"data.data_dir={tiny_data}", *TINY, "callbacks.pictures.n_images=4"]
    loggers = "logger=[tensorboard,csv,mlflow,wandb]"
    labels = ["tags=[baseline,bn]", "notes=first try"]
    run_cli(tmp_path, *args, loggers, *labels, "trainer.max_epochs=1")
    run = _only_run(tmp_path)
    ids = json.loads((run / "trackers.json").read_text())
    # MLflow: one run named by the folder, params, labels, pictures and metrics.json.
    client = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    (tracked,) = client.search_runs([client.get_experiment_by_name("mnistx").experiment_id])
    assert tracked.info.run_name == run.name and ids["mlflow"]["run_id"] == tracked.info.run_id
    assert tracked.data.params["optimizer/lr"] == "0.001"
    assert tracked.data.params["model"] == "mlp"
    assert tracked.data.tags["baseline"] == "true" and tracked.data.tags["tags"] == "baseline,bn"
    assert tracked.data.tags["mlflow.note.content"] == "first try"
    artifacts = {a.path for a in client.list_artifacts(tracked.info.run_id)}
    assert "metrics.json" in artifacts and "pictures" in artifacts
    pictures = {Path(a.path).name for a in client.list_artifacts(tracked.info.run_id, "pictures")}
    assert {"samples.png", "curves.png", "confusion_matrix.png"} <= pictures
    # W&B: offline, in the run folder, read back from its run file.
    (offline,) = (run / "wandb").glob("offline-run-*")
    first = _metrics(run)
    tracked_wandb = wandb_run(offline)
    assert tracked_wandb["run"].run_id == ids["wandb"]["id"] and offline.name.endswith(
        ids["wandb"]["id"]
    )
    assert tracked_wandb["run"].display_name == run.name
    assert list(tracked_wandb["run"].tags) == ["baseline", "bn"]
    assert tracked_wandb["run"].notes == "first try" and tracked_wandb["run"].job_type == "train"
    assert tracked_wandb["config"]["optimizer/lr"] == 0.001
    assert tracked_wandb["config"]["model"] == "mlp"
    assert tracked_wandb["summary"]["val/acc_best"] == pytest.approx(first["val/acc_best"])
    epochs = [row for row in tracked_wandb["history"] if "val/acc" in row]
    assert [row["val/acc"] for row in epochs] == pytest.approx(first["history"]["val/acc"])
    assert first["tags"] == ["baseline", "bn"] and first["notes"] == "first try"

    run_cli(tmp_path, f"resume={run}", "trainer.max_epochs=2")
    metrics = _metrics(run)
    # MLflow: the same run, continued; the epoch is the step.
    (after,) = client.search_runs([tracked.info.experiment_id])
    assert after.info.run_id == tracked.info.run_id
    for key in ("train/loss", "val/acc", "train/lr"):
        history = client.get_metric_history(after.info.run_id, key)
        assert [m.step for m in history] == [0, 1], key
        assert [m.value for m in history] == pytest.approx(metrics["history"][key]), key
    test_acc = client.get_metric_history(after.info.run_id, "test/acc")[-1].value
    assert test_acc == pytest.approx(metrics["test/acc"])
    assert "epoch" not in after.data.metrics
    # CSV: one row per epoch, the first process's kept (Lightning's CSVLogger deletes them).
    with (run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    fit_rows = [r for r in rows if r["val/acc"]]
    assert [r["step"] for r in fit_rows] == ["0", "1"]
    assert [float(r["val/acc"]) for r in fit_rows] == pytest.approx(metrics["history"]["val/acc"])
    assert float(rows[-1]["test/acc"]) == pytest.approx(metrics["test/acc"])
    assert "epoch" not in rows[0]
    # W&B: the resume logged to the same run id.
    folders = sorted((run / "wandb").glob("offline-run-*"))
    assert len(folders) == 2 and all(f.name.endswith(ids["wandb"]["id"]) for f in folders)


def test_a_sweeps_mlflow_runs_carry_their_swept_values_and_the_reports_numbers(tiny_data, tmp_path):
    from mlflow.tracking import MlflowClient

    args = [f"data.data_dir={tiny_data}", *TINY_OVERRIDES, "trainer.max_epochs=1"]
    run_cli(tmp_path, "-m", *args, "logger=mlflow", "optimizer.lr=0.01,0.003")
    (report,) = (tmp_path / "outputs" / "multirun").glob("*/*/comparison.csv")
    with report.open() as f:
        rows = {r["optimizer.lr"]: r for r in csv.DictReader(f)}
    client = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    tracked = client.search_runs([client.get_experiment_by_name("mnistx").experiment_id])
    assert len(tracked) == 2
    sweep = f"{report.parent.parent.name}/{report.parent.name}"
    for r in tracked:
        lr = r.data.tags["swept.optimizer.lr"]
        assert r.data.tags["sweep"] == sweep and r.info.run_name == f"optimizer.lr={lr}"
        assert r.data.metrics["val/acc_best"] == pytest.approx(float(rows[lr]["val/acc_best"]))
        assert r.data.metrics["test/acc"] == pytest.approx(float(rows[lr]["test/acc"]))


def test_logger_csv_alone_writes_no_event_files(make_cfg, tmp_path):
    from mnistx.training.recipe import train

    train(make_cfg("logger=csv", "trainer.max_epochs=1"))
    run = tmp_path / "run"
    assert (run / "metrics.csv").is_file() and not list(run.glob("events.out.tfevents.*"))


def _events(run: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run), size_guidance={"scalars": 0, "tensors": 0})
    ea.Reload()
    return ea


def test_tensorboard_has_one_lr_tag_no_epoch_chart_and_the_swept_keys_first(make_cfg, tmp_path):
    from tensorboard.plugins.hparams import plugin_data_pb2

    from mnistx.runs.records import RunInfo
    from mnistx.training.recipe import train

    swept = {"model.activation": "tanh", "data.batch_size": "32"}
    for optimizer in ("sgd", "adam"):
        cfg = make_cfg(
            f"optimizer={optimizer}",
            "model.activation=tanh",
            "trainer.max_epochs=2",
            f"output_dir={tmp_path / optimizer}",
        )
        choices = {"model": "mlp", "optimizer": optimizer, "loss": "cross_entropy"}  # as Hydra's
        train(cfg, choices=choices, run=RunInfo([], swept))
        ea = _events(tmp_path / optimizer)
        tags = set(ea.Tags()["scalars"])
        assert "train/lr" in tags and not any(t.startswith("lr-") for t in tags), tags
        assert "epoch" not in tags
        assert [e.step for e in ea.Scalars("val/acc")] == [0, 1]
        content = ea.PluginTagToContent("hparams")["_hparams_/experiment"]
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        names = [h.name for h in data.experiment.hparam_infos]
        assert names[:6] == [
            "model/activation",
            "data/batch_size",
            "model",
            "optimizer",
            "optimizer/lr",
            "loss",
        ]


def test_compare_shows_and_filters_tags(tmp_path):
    from mnistx.sweeps.comparison import compare

    sweep = tmp_path / "sweep"
    for lr, tags in (("0.1", ["baseline"]), ("0.01", ["bn"]), ("0.001", [])):
        job = sweep / f"optimizer.lr={lr}"
        job.mkdir(parents=True)
        record = {"status": "ok", "val/acc_best": float(lr), "test/acc": 0.5, "tags": tags}
        (job / "metrics.json").write_text(
            json.dumps(
                {
                    **record,
                    "overrides": [f"optimizer.lr={lr}"],
                    "swept": {"optimizer.lr": lr},
                    "history": {},
                }
            )
        )
    rows = compare([sweep])
    assert {r["optimizer.lr"]: r["tags"] for r in rows} == {
        "0.1": "baseline",
        "0.01": "bn",
        "0.001": "",
    }
    header = (sweep / "comparison.md").read_text().splitlines()[0]
    assert header.startswith("| optimizer.lr | tags | val/acc_best |")
    only = compare([sweep], tag="baseline")
    assert [r["optimizer.lr"] for r in only] == ["0.1"]
    assert (sweep / "tag-baseline" / "comparison.md").is_file()


def test_tracker_mistakes_get_one_paragraph(cli_here, tmp_path):
    code, _, err = cli_here(tmp_path, "logger.save_dir=elsewhere")
    assert code == 1 and "logger.save_dir is now logger.tensorboard.save_dir" in err
    code, _, err = cli_here(tmp_path, "callbacks.lr_monitor.logging_interval=step")
    assert code == 1 and "train/lr" in err and "Traceback" not in err
    assert not (tmp_path / "outputs").exists()  # refused before Hydra wrote anything
    code, _, err = cli_here(tmp_path, "tags=1.5")
    assert code == 1 and "tags=1.5 must be a list or a name" in err and "Traceback" not in err


def test_a_tracker_that_is_not_installed_names_the_pip_command(tiny_data, tmp_path):
    """mlflow hidden from the process, as in an environment without the extra."""
    code = (
        "import sys; sys.modules['mlflow'] = None\n"
        "sys.argv = ['mnistx.train', 'logger=mlflow', "
        f"'data.data_dir={tiny_data}', 'trainer.max_epochs=1']\n"
        "from mnistx.train import script; script()\n"
    )
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1, proc.stderr
    assert "pip install 'mnistx[mlflow]'" in proc.stderr and "Traceback" not in proc.stderr


def test_an_mlflow_store_it_cannot_open_gets_one_paragraph(cli_here, tiny_data, tmp_path):
    code, _, err = cli_here(
        tmp_path,
        f"data.data_dir={tiny_data}",
        "logger=mlflow",
        "logger.mlflow.tracking_uri=nosuch://x",
    )
    assert code == 1 and "Traceback" not in err
    assert "logger=mlflow could not open the tracking store nosuch://x" in err
