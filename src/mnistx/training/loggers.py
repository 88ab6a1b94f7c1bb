"""The trackers a run reports to (`logger=tensorboard|csv|mlflow|wandb`, or a list), built by
the factories conf/logger/ names.

Every tracker gets the same things: the per-epoch metrics (`train/loss`, `val/acc`, ...,
`train/lr`) with the epoch as the step, the flat hyperparameters, the run's labels (its
folder name, swept values, `tags`, `notes`) and its pictures. The MLflow run id and the W&B
run id are kept in the run folder (trackers.json), so a resumed run continues the same
tracked run instead of starting a second one.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from mnistx.compat.tensorboard import fast_record_checksums, file_writer
from mnistx.errors import UserError
from mnistx.runs.layout import METRICS_CSV
from mnistx.runs.records import write_text
from mnistx.training.labels import Labels, hparams_order


def close_trackers(loggers: list[Any]) -> None:
    """End each tracked run in this process (a multirun's next job starts its own)."""
    for logger in loggers:
        if isinstance(logger, Tracker):
            logger.close()


class Tracker:
    """What mnistx sends every tracker beyond Lightning's metrics and hyperparameters."""

    labels: Labels

    def log_picture(self, tag: str, image: Any, png: bytes, file: Path | None, step: int) -> None:
        """A picture of the run (a PIL image, its PNG bytes, its file in the run folder)."""

    def log_files(self, files: list[Path]) -> None:
        """The run's records (metrics.json) once they are written."""

    def close(self) -> None:
        """The run is over in this process."""


class TensorBoard(Tracker, TensorBoardLogger):
    """Event files in the run folder; HParams ordered; pictures in the Images tab; the
    labels as text."""

    def __init__(self, labels: Labels, epoch_chart: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.labels, self.epoch_chart = labels, epoch_chart
        fast_record_checksums()

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self.epoch_chart and step is not None:
            metrics = {**metrics, "epoch": step}
        super().log_metrics(metrics, step)

    def log_hyperparams(self, params: Any, metrics: Any = None) -> None:  # type: ignore[override]
        """hparams.yaml, and the HParams tab's summaries without placeholder metric values at
        step 0 (Lightning's own would log hp_metric)."""
        from torch.utils.tensorboard.summary import hparams

        from mnistx.training.hparams import HPARAM_METRICS

        ordered = hparams_order(dict(params), self.labels.swept)
        super().log_hyperparams(ordered)
        writer = file_writer(self.experiment)
        for summary in hparams(ordered, dict.fromkeys(HPARAM_METRICS, 0.0)):
            writer.add_summary(summary)
        text = {"tags": ", ".join(self.labels.tags), "notes": self.labels.notes or ""}
        for key, value in text.items():
            if value:
                self.experiment.add_text(key, value, 0)

    def log_picture(self, tag: str, image: Any, png: bytes, file: Path | None, step: int) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        encoded = Summary.Image(
            height=image.height, width=image.width, colorspace=3, encoded_image_string=png
        )
        summary = Summary(value=[Summary.Value(tag=tag, image=encoded)])
        file_writer(self.experiment).add_summary(summary, global_step=step)


class CSV(Tracker, Logger):
    """metrics.csv in the run folder: one row per epoch (its train and val values side by side;
    the test's in a last row). Lightning's CSVLogger deletes a metrics.csv it finds in its
    folder, which a resumed run's is: this one keeps the epochs an earlier process wrote."""

    def __init__(self, labels: Labels, save_dir: str) -> None:
        super().__init__()
        self.labels, self.path = labels, Path(save_dir) / METRICS_CSV
        self._rows: dict[int, dict[str, float]] = {}
        self._earlier: list[dict[str, str]] | None = None

    @property
    def name(self) -> str:
        return "csv"

    @property
    def version(self) -> str:
        return ""

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """The hyperparameters are in the run's .hydra/config.yaml (and hparams.yaml)."""

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        row = self._rows.setdefault(int(step or 0), {})
        row.update({k: float(v) for k, v in metrics.items()})
        self.save()

    @rank_zero_only
    def save(self) -> None:
        import csv as csv_module
        import io

        if not self._rows:
            return
        if self._earlier is None:  # an earlier process's epochs, before this one's first
            self._earlier = []
            if self.path.is_file():
                with self.path.open(newline="") as f:
                    self._earlier = list(csv_module.DictReader(f))
        first = min(self._rows)
        rows: list[dict[str, Any]] = [
            r for r in self._earlier if r.get("step", "").isdigit() and int(r["step"]) < first
        ]
        rows += [{"step": str(step), **values} for step, values in sorted(self._rows.items())]
        keys = ["step"] + sorted({k for r in rows for k in r} - {"step"})
        out = io.StringIO()
        writer = csv_module.DictWriter(out, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text(self.path, out.getvalue())


class MLflow(Tracker, MLFlowLogger):
    """One MLflow run per mnistx run, named by its folder; pictures and metrics.json as
    artifacts."""

    def __init__(self, labels: Labels, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.labels = labels

    def log_picture(self, tag: str, image: Any, png: bytes, file: Path | None, step: int) -> None:
        if file is not None:
            self.experiment.log_artifact(self.run_id, str(file), "pictures")

    def log_files(self, files: list[Path]) -> None:
        for file in files:
            self.experiment.log_artifact(self.run_id, str(file))

    def close(self) -> None:
        """Wait for the metrics MLflow logs in the background (synchronous: false): a
        finished mnistx command leaves without the interpreter's exit handlers."""
        import mlflow as mlflow_module

        mlflow_module.flush_async_logging()


class Wandb(Tracker, WandbLogger):
    """A W&B run (offline by default: wandb/offline-run-* in the run folder; `wandb sync`)."""

    def __init__(self, labels: Labels, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.labels = labels

    def log_picture(self, tag: str, image: Any, png: bytes, file: Path | None, step: int) -> None:
        """From the PNG already encoded (W&B would encode the image again: ~20-90 ms)."""
        import os
        import tempfile

        if file is not None:
            self.log_image(key=tag, images=[str(file)], step=step)
            return
        fd, path = tempfile.mkstemp(suffix=".png")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(png)
            self.log_image(key=tag, images=[path], step=step)  # copied into the run here
        finally:
            os.unlink(path)

    def close(self) -> None:
        import wandb as wandb_module

        if self.labels.is_rank_zero:
            wandb_module.finish()


def _require(module: str, extra: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError:
        raise UserError(
            f"logger={extra} needs the {module} package, which is not installed. Install it "
            f"with: pip install 'mnistx[{extra}]'"
        ) from None


def tensorboard(labels: Labels, **kwargs: Any) -> TensorBoard:
    return TensorBoard(labels, **kwargs)


def csv(labels: Labels, save_dir: str) -> CSV:
    return CSV(labels, save_dir)


def mlflow(
    labels: Labels,
    tracking_uri: str,
    experiment_name: str,
    artifact_location: str | None = None,
    **kwargs: Any,
) -> MLflow:
    """The run's MLflow run: the one an earlier process of this run started, if any."""
    _require("mlflow", "mlflow")
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # "Creating experiment", migrations
    tags = {f"swept.{k}": v for k, v in labels.swept.items()}
    tags.update(dict.fromkeys(labels.tags, "true"))
    if labels.tags:
        tags["tags"] = ",".join(labels.tags)
    if labels.notes:
        tags["mlflow.note.content"] = labels.notes  # the run's description in MLflow's UI
    if labels.group:
        tags["sweep"] = labels.group
    try:
        logger = MLflow(
            labels,
            experiment_name=experiment_name,
            run_name=labels.run_name,
            tracking_uri=tracking_uri,
            tags=tags,
            artifact_location=str(Path(artifact_location).resolve()) if artifact_location else None,
            run_id=labels.remembered("mlflow").get("run_id"),
            **kwargs,
        )
        if labels.is_rank_zero:
            labels.remember("mlflow", {"run_id": logger.run_id, "tracking_uri": tracking_uri})
    except UserError:
        raise
    except Exception as e:  # a store MLflow cannot open or reach
        detail = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise UserError(
            f"logger=mlflow could not open the tracking store {tracking_uri} ({detail}). Check "
            "logger.mlflow.tracking_uri, e.g. logger.mlflow.tracking_uri=sqlite:///outputs/"
            "mlflow.db or http://<server>:5000"
        ) from None
    return logger


def wandb(labels: Labels, offline: bool = True, **kwargs: Any) -> Wandb:
    """The run's W&B run, resumed under the id an earlier process of this run used."""
    _require("wandb", "wandb")
    import secrets

    run_id = labels.remembered("wandb").get("id") or secrets.token_hex(4)
    logger = Wandb(
        labels,
        offline=offline,
        name=labels.run_name,
        id=run_id,
        resume="allow",
        group=labels.group,
        job_type="train",
        tags=labels.tags or None,
        notes=labels.notes,
        **kwargs,
    )
    labels.remember("wandb", {"id": run_id, "offline": offline})
    return logger
