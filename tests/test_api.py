"""`from mnistx import api`: train, sweep, compare and load in one Python process (as a
notebook does), through the command line's run folders, records and errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from helpers import TINY_OVERRIDES

from mnistx.runs.sweep_record import read_sweep_record

SCRIPT = """
import json, logging, sys
import torch, torchvision
from mnistx import api
from mnistx.errors import UserError

base = sys.argv[1:]
before = list(logging.getLogger().handlers)
a = api.train([*base, "optimizer.lr=1e-3"])
b = api.train(" ".join([*base, "optimizer.lr=3e-2"]))
logging.getLogger("notebook").warning("the user's own line")
sweep = api.sweep([*base, "optimizer.lr=1e-3,3e-2"])
report = api.compare([a.folder, b.folder])
model = api.load(a.folder)
test = torchvision.datasets.MNIST(base[0].split("=", 1)[1], train=False)
probs = model.predict(test.data.numpy())
errors = {}
for name, call in {
    "bad value": lambda: api.train([*base, "optimizer.lr=-1"]),
    "unknown option": lambda: api.train([*base, "model=transformer"]),
    "multirun": lambda: api.train(["-m", *base]),
    "no run": lambda: api.load("nowhere"),
    "bad images": lambda: model.predict(torch.zeros(3, 32, 32)),
}.items():
    try:
        call()
    except UserError as e:
        errors[name] = str(e)
print(json.dumps({
    "a": [str(a.folder), a.test_acc, str(a.checkpoint)],
    "b": [str(b.folder), b.test_acc],
    "handlers_kept": logging.getLogger().handlers == before,
    "sweep": [str(sweep.folder), len(sweep.runs), [r["test/acc"] for r in sweep.rows]],
    "compare": [str(report.folder), sorted(r["test/acc"] for r in report.rows)],
    "predicted_acc": float((probs.argmax(1) == test.targets.numpy()).mean()),
    "probs_sum": float(probs.sum(1).mean()),
    "errors": errors,
}))
"""


def test_train_sweep_compare_and_load_from_python(tiny_data, tmp_path):
    script = tmp_path / "notebook.py"
    script.write_text(textwrap.dedent(SCRIPT))
    args = [f"data.data_dir={tiny_data}", *TINY_OVERRIDES]
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # Runs where the command line puts them, each with its own record.
    folder_a, acc_a, ckpt = out["a"]
    run_a = tmp_path / folder_a
    metrics = json.loads((run_a / "metrics.json").read_text())
    assert folder_a.startswith("outputs/") and metrics["test/acc"] == acc_a
    assert ckpt == str(run_a.relative_to(tmp_path) / "checkpoints" / "best.ckpt")
    assert out["b"][0] != folder_a and (tmp_path / out["b"][0] / "metrics.json").is_file()
    # The user's logging is theirs again: nothing of it went into a run's train.log.
    assert out["handlers_kept"]
    assert "the user's own line" not in (run_a / "train.log").read_text()
    assert "the user's own line" not in (tmp_path / out["b"][0] / "train.log").read_text()
    # A sweep of the same two settings: its jobs and its table (the same seeded numbers).
    sweep_dir, jobs, sweep_accs = out["sweep"]
    assert sweep_dir.startswith("outputs/multirun/") and jobs == 2
    assert sorted(sweep_accs) == sorted([acc_a, out["b"][1]])
    assert (tmp_path / sweep_dir / "comparison.md").is_file()
    # Its record is a plain sweep's: `resume=<sweep>` may finish it from the command line.
    assert list(read_sweep_record(tmp_path / sweep_dir).hydra.overrides.task)
    # compare: a report of two single runs goes to a folder of its own.
    report_dir, compared = out["compare"]
    assert report_dir.startswith("outputs/comparisons/") and compared == sorted(sweep_accs)
    assert (tmp_path / report_dir / "comparison.md").is_file()
    # load: the tested network, predicting the official test images from 0-255 pixels,
    # scores what the run's test scored.
    assert abs(out["predicted_acc"] - acc_a) < 1e-6 and abs(out["probs_sum"] - 1) < 1e-5
    errors = out["errors"]
    assert (
        errors["bad value"]
        == "optimizer.lr=-1 must be a positive number. Example: optimizer.lr=1e-3"
    )
    assert "Could not find 'model/transformer'" in errors["unknown option"]
    assert "Available options in 'model'" in errors["unknown option"]
    assert "api.sweep" in errors["multirun"]
    assert "nowhere does not exist" in errors["no run"]
    assert "28x28" in errors["bad images"]
