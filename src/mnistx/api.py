"""mnistx from Python (a notebook, a script): train, sweep, compare and load runs.

    from mnistx import api
    a = api.train(["optimizer.lr=1e-3", "trainer.max_epochs=2"])
    b = api.train("optimizer.lr=1e-2 trainer.max_epochs=2")
    report = api.compare([a.folder, b.folder])
    model = api.load(a.folder)
    probabilities = model.predict(images)  # 28x28 images, pixels 0-255

Each call is a command's: `train` and `sweep` run `python -m mnistx.train [-m] ...` in this
process (the same config, run folders, records and write rules), `compare` is `python -m
mnistx.compare`, `load` reads a run as `mnistx.predict` does (its config checked, nothing of
it executed). A mistake raises mnistx.errors.UserError with the paragraph the command would
print; nothing here ends the process.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shlex
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from mnistx.errors import UserError

INTERRUPTED = 130


@dataclass(frozen=True)
class Result:
    """A finished run: its folder, its metrics.json and its best checkpoint."""

    folder: Path
    metrics: dict[str, Any]
    checkpoint: Path | None

    @property
    def test_acc(self) -> float | None:
        return self.metrics.get("test/acc")

    def load(self) -> Model:
        return load(self.folder)


@dataclass(frozen=True)
class Sweep:
    """A finished sweep: its folder, its runs, and the comparison table (one row per
    setting, seeds pooled: the rows of comparison.md)."""

    folder: Path
    runs: list[Result]
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class Comparison:
    rows: list[dict[str, Any]]
    folder: Path  # where comparison.md, comparison.csv and the plots were written


@dataclass(frozen=True)
class Model:
    """A trained network from a run folder, ready to predict."""

    network: Any  # torch.nn.Module, in eval mode
    config: DictConfig  # the run's own config (checked, in today's shape)
    folder: Path
    checkpoint: Path

    def predict(self, images: Any) -> Any:
        """Class probabilities (numpy, one row per image) for 28x28 images with pixels 0-255
        (a numpy array or tensor, one image or a batch), normalised as the run trained."""
        import torch

        from mnistx.inspection.inference import predict_probs

        x = torch.as_tensor(images).float()
        if x.dim() == 2:
            x = x[None]
        if x.dim() != 3 or tuple(x.shape[1:]) != (28, 28):
            raise UserError(
                f"predict takes 28x28 images (one, or a batch of shape N x 28 x 28), not an "
                f"array of shape {tuple(x.shape)}."
            )
        data = self.config.data
        x = (x[:, None] / 255 - data.mean) / data.std
        return predict_probs(self.network, x).numpy()


def train(overrides: Sequence[str] | str = ()) -> Result:
    """One run: `python -m mnistx.train OVERRIDES`. Returns its record."""
    args = _words(overrides)
    if {"-m", "--multirun"} & set(args):
        raise UserError("api.train runs one run; api.sweep runs a multirun (-m).")
    folder = _command(args)
    return _result(folder)


def sweep(overrides: Sequence[str] | str) -> Sweep:
    """A multirun: `python -m mnistx.train -m OVERRIDES` (any sweeper or launcher)."""
    from mnistx.runs.layout import METRICS
    from mnistx.sweeps import comparison
    from mnistx.sweeps.statistics import add_statistics

    args = [a for a in _words(overrides) if a not in ("-m", "--multirun")]
    folder = _command(["-m", *args])
    runs = [_result(m.parent) for m in sorted(folder.glob(f"*/{METRICS}"))]
    found = comparison.load_runs([folder])
    rows = comparison.group_runs(found, comparison.swept_keys(found))
    add_statistics(rows)
    return Sweep(folder, runs, rows)


def compare(
    folders: Sequence[str | Path], out: str | Path | None = None, tag: str | None = None
) -> Comparison:
    """`python -m mnistx.compare FOLDERS [--out OUT] [--tag TAG]`: the table and the report
    files, where that command writes them (a sweep's own folder, or a new one)."""
    from mnistx.sweeps.comparison import report

    if not folders:
        raise UserError("api.compare needs at least one run or sweep folder.")
    rows, written = report([str(f) for f in folders], out, tag)
    return Comparison(rows, written)


def load(run: str | Path, checkpoint: str | Path | None = None) -> Model:
    """A run's network and config (its best checkpoint, or `checkpoint`), as mnistx.predict
    reads them."""
    from mnistx.inspection.inference import load_network
    from mnistx.runs.saved import locate, run_config

    folder, ckpt = locate(str(run), str(checkpoint) if checkpoint else None)
    return Model(load_network(ckpt), run_config(folder), folder, ckpt)


def _words(overrides: Sequence[str] | str) -> list[str]:
    if isinstance(overrides, str):
        return shlex.split(overrides)
    if not all(isinstance(o, str) for o in overrides):
        raise UserError(
            f"overrides must be strings such as 'optimizer.lr=0.01' (a list, or one string "
            f"as on the command line), not {list(overrides)!r}."
        )
    return list(overrides)


def _command(args: list[str]) -> Path:
    """Run the train command in this process; its folder, or the UserError it reported."""
    from mnistx.runs.claims import RAN_IN
    from mnistx.train import cli

    RAN_IN.clear()
    argv, sys.argv = sys.argv, ["mnistx.train", *args]
    try:
        with _logging_restored(), _tee_stderr() as said:
            cli()
    except SystemExit as e:
        if e.code == INTERRUPTED:
            raise KeyboardInterrupt from None
        if e.code not in (0, None):
            raise UserError(_error(said.getvalue())) from None
    finally:
        sys.argv = argv
    if not RAN_IN:
        raise UserError(_error(said.getvalue()) or "The train command ran nothing.")
    return RAN_IN[-1]


@contextlib.contextmanager
def _logging_restored() -> Iterator[None]:
    """Hydra sets up logging for each job (the console, the run's train.log); afterwards this
    process logs as before, and never into the finished run's train.log."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)


@contextlib.contextmanager
def _tee_stderr() -> Iterator[io.StringIO]:
    """What the command says on stderr: shown as usual, and kept for the error."""
    said, shown = io.StringIO(), sys.stderr

    class Tee(io.TextIOBase):
        def write(self, text: str) -> int:
            said.write(text)
            return shown.write(text)

        def flush(self) -> None:
            shown.flush()

    with contextlib.redirect_stderr(Tee()):
        yield said


def _error(stderr: str) -> str:
    """The command's error paragraph(s), without the `error: ` the command line prints; or
    Hydra's own message (a config it cannot compose), without its search path and hint."""
    lines = [ln for ln in stderr.splitlines() if ln.startswith(("error:", "skipped:"))]
    if lines:
        return "\n".join(ln.split(":", 1)[1].strip() for ln in lines)
    hydra = stderr.split("Config search path:")[0].split("Set the environment variable HYDRA")[0]
    return hydra.strip()


def _result(folder: Path) -> Result:
    from mnistx.runs.saved import best_checkpoint, read_metrics

    metrics = read_metrics(folder)
    if metrics is None:
        raise UserError(f"{folder} holds no metrics.json: the run did not finish.")
    return Result(folder, metrics, best_checkpoint(folder))
