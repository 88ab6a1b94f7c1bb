"""The command line as users run it: `python -m mnistx.train ...` in a fresh working folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_OVERRIDES, make_tiny_dataset, run_cli, start_cli, write_idx

from mnistx.runs.claims import claim_folder
from mnistx.runs.resolvers import unique_dir
from mnistx.train_help import plain_help_request


def test_single_run_end_to_end(tiny_data, tmp_path):
    proc = run_cli(tmp_path, f"data.data_dir={tiny_data}", *TINY_OVERRIDES)
    runs = list((tmp_path / "outputs").glob("*/*"))
    assert len(runs) == 1
    run = runs[0]
    assert run.parent.name.count("-") == 2 and len(run.name) == len("HH-MM-SS")
    for name in (
        ".hydra/config.yaml",
        ".hydra/overrides.yaml",
        "train.log",
        "metrics.json",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
        "hparams.yaml",
    ):
        assert (run / name).exists(), name
    assert list(run.glob("events.out.tfevents.*"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["output_dir"] == str(run)
    assert f"data.data_dir={tiny_data}" in metrics["overrides"]
    assert "test accuracy" in proc.stdout and f"{100 * metrics['test/acc']:.2f}%" in proc.stdout
    assert "Traceback" not in proc.stderr


# One case per place a user error can arise (config, data files, data split, Lightning's
# Trainer, training itself); tests/test_train.py checks the messages of the other bad values
# in-process, without a subprocess's start-up each.
@pytest.mark.parametrize(
    "args,text",
    [
        (["data.data_dir={missing}"], "MNIST/raw"),
        (["model.activation=swish"], "Valid values for model.activation"),
        (["trainer.accelerator=gpu"], "gpu not available on this machine"),
        (["data.val_size=600"], "data.val_size=600 is out of range"),
        (["data.batch_size=100000"], "larger than the training split"),
        (["trainer.accelerator=cpu", "trainer.devices=1000"], "trainer.devices=1000, but"),
        (["optimizer=sgd", "optimizer.lr=1e8"], "Training diverged"),
    ],
)
def test_user_errors_exit_1_with_one_message(tiny_data, tmp_path, args, text):
    import torch

    if "gpu" in args[0] and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    args = [a.format(missing=tmp_path / "missing") for a in args]
    # Files already there stay untouched by a failing run.
    keep = tmp_path / "outputs" / "notes.txt"
    keep.parent.mkdir()
    keep.write_text("mine")
    data = [] if "data.data_dir" in args[0] else [f"data.data_dir={tiny_data}"]
    proc = run_cli(tmp_path, *data, *TINY_OVERRIDES, *args, check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert text in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and text in errors[0]
    (metrics,) = (tmp_path / "outputs").glob("*/*/metrics.json")
    status = "skipped" if "not available" in text else "failed"
    assert json.loads(metrics.read_text())["status"] == status
    assert keep.read_text() == "mine"


@pytest.mark.parametrize(
    "override,listed",
    [
        ("model=transformer", "cnn"),
        ("optimizer=adamx", "sgd_momentum"),
        ("loss=hinge", "cross_entropy"),
        ("data=cifar10", "fashion_mnist"),
    ],
)
def test_unknown_names_get_hydras_short_message_listing_the_options(tmp_path, override, listed):
    proc = run_cli(tmp_path, override, check=False)
    group, name = override.split("=")
    assert proc.returncode == 1
    assert f"Could not find '{group}/{name}'" in proc.stderr and listed in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "outputs").exists()


def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path):
    procs = [start_cli(tmp_path, "optimizer.lr=-1", stderr=subprocess.DEVNULL) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [1, 1, 1]
    runs = list((tmp_path / "outputs").glob("*/*/metrics.json"))
    assert len(runs) == 3


def test_run_folders_are_named_by_resolvers_and_claimed_once_per_run(tmp_path):
    base = str(tmp_path / "2026-01-01" / "10-00-00")
    assert unique_dir(base) == base and not Path(base).exists()  # naming creates nothing
    assert claim_folder(base) == base and Path(base).is_dir()
    assert claim_folder(base) == base + "-1"  # another run in the same second
    assert unique_dir(base) == base


def test_composing_or_printing_the_config_creates_no_folder(tmp_path):
    """Only a run that starts claims its folder: `--cfg hydra` resolves hydra.run.dir and
    hydra.sweep.dir and leaves no folder behind."""
    shown = run_cli(tmp_path, "--cfg", "all", "--resolve")
    assert shown.returncode == 0, shown.stderr
    assert "outputs/multirun/" in shown.stdout
    assert not (tmp_path / "outputs").exists()


def _python(cwd, code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_quick_help_prints_hydras_help_page_without_torch(tmp_path):
    """mnistx answers `--help` itself (Hydra's walk of every plugin's config groups takes ~2 s);
    the page must stay the one Hydra renders from conf/hydra/help, overrides included."""
    ours = run_cli(tmp_path, "model=cnn", "--help").stdout
    hydras = _python(
        tmp_path,
        "import sys; sys.argv[1:] = ['model=cnn', '--help']\nfrom mnistx.train import main; main()",
    )
    assert hydras.returncode == 0, hydras.stderr
    assert ours == hydras.stdout and "kernel_size: 3" in ours
    no_torch = _python(
        tmp_path,
        "import sys; sys.argv[1:] = ['--help']\nfrom mnistx.train import cli; cli()\n"
        "assert not {'torch', 'lightning'} & set(sys.modules), 'imported torch'",
    )
    assert no_torch.returncode == 0, no_torch.stderr


@pytest.mark.parametrize(
    "argv,expect",
    [
        (["--help"], []),
        (["model=cnn", "-h"], ["model=cnn"]),
        (["-m", "--help"], None),  # other flags: Hydra's own help
        (["--help", "--resolve"], None),
        (["model=cnn"], None),
    ],
)
def test_which_help_requests_are_answered_quickly(argv, expect):
    assert plain_help_request(argv) == expect


def test_bad_override_with_help_gets_hydras_message_not_a_traceback(tmp_path):
    proc = run_cli(tmp_path, "model=nope", "--help", check=False)
    assert proc.returncode == 1 and "Could not find 'model/nope'" in proc.stderr
    assert "Traceback" not in proc.stderr and "cnn" in proc.stderr


def test_help_and_cfg_are_quick_and_need_no_torch(tmp_path):
    proc = run_cli(tmp_path, "--help")
    assert "model: cnn, mlp" in proc.stdout and "optimizer: adadelta, adagrad, adam" in proc.stdout
    assert "python -m mnistx.train -m optimizer.lr=1e-3,1e-2" in proc.stdout
    proc = run_cli(tmp_path, "--cfg", "job", "model=cnn")
    assert "mnistx.models.networks.CNN" in proc.stdout
    assert not (tmp_path / "outputs").exists()


# Every other mistake, through the real cli() in this process (no interpreter start-up each):
# one `error:` paragraph, exit 1, no traceback, and the run's metrics.json says failed.
@pytest.mark.parametrize(
    "args,text",
    [
        (["seed=abc"], "seed=abc must be an integer"),
        (["seed=-1"], "seed=-1 must be an integer from 0 to 4294967295"),
        (["seed=1.5"], "seed=1.5 must be an integer"),
        (["loss.label_smoothing=2"], "loss.label_smoothing=2 must be in [0, 1)"),
        (
            ["scheduler=step", "scheduler.step_size=0"],
            "scheduler.step_size=0 must be a positive integer",
        ),
        (["optimizer.weight_decay=-1"], "optimizer.weight_decay=-1 must be a number >= 0"),
        (
            ["+trainer.accumulate_grad_batches=0"],
            "trainer.accumulate_grad_batches=0 must be a positive integer",
        ),
        (
            ["+trainer.val_check_interval=1000"],
            "trainer.val_check_interval=1000 is more batches than one epoch has (16)",
        ),
        (["model.hidden_sizes=128"], "model.hidden_sizes=128 must be a list; its default is"),
        (["augment.scale=0.9"], "augment.scale=0.9 must be a list; its default is [1.0,1.0]"),
        (["+trainer.foo=1"], "trainer.foo is not an argument of Lightning's Trainer"),
        # Issue 26: tracebacks, or an untrained network reported as ok, on today's main.
        (["trainer.accelerator=abc"], "is not an accelerator Lightning knows"),
        (["+trainer.val_check_interval=0"], "trainer.val_check_interval=0 must be a number"),
        (["+trainer.max_steps=0"], "trainer.max_steps=0 must be an integer >= 1"),
        (["+trainer.limit_train_batches=0"], "trainer.limit_train_batches=0 must be"),
        (["threads=4096"], "threads=4096 is more than the"),
        (["data.dataset=os.system"], "is not an MNIST-family dataset"),
        (["+callbacks.x._target_=builtins.print"], "is not something mnistx builds"),
        (["trusted_targets=[not a name]"], "trusted_targets="),
        (["data.batch_size=true"], "data.batch_size=true must be an integer (true and false"),
        (["trainer.max_epochs=true"], "trainer.max_epochs=true must be an integer (true and"),
        (["model=cnn", "model.channels=[]"], "model.channels=[] gives a CNN no convolution"),
        (["model.dropout=1.5"], "model.dropout=1.5 must be in [0, 1)"),
        (["test=maybe"], "test=maybe must be true or false"),
        (
            ["callbacks.progress_bar.refresh_rate=fast"],
            "callbacks.progress_bar.refresh_rate=fast must be an integer",
        ),
        (["data.data_dir={file}"], "Not a directory"),
        (["data.mean=abc"], "data.mean=abc must be a number; its default is 0.1307"),
        (["target_acc=true"], "target_acc=true must be an accuracy in (0, 1]"),
        (["threads=true"], "threads=true must be a positive integer"),
        (["scheduler.interval=daily"], "scheduler.interval=daily must be epoch"),
        (
            ["scheduler=onecycle", "scheduler.max_lr=-1"],
            "scheduler.max_lr=-1 must be a positive learning rate",
        ),
        (["data.std=0"], "data.std=0 must be a positive number"),
        (["data.image_size=32"], "holds 28x28 single-channel images"),
        (["trainer.devices=abc"], "Invalid trainer settings: `devices`"),
        (
            ["callbacks.progress_bar.every_n_batches=0"],
            "callbacks.progress_bar.every_n_batches=0 must be an integer >= 1",
        ),
    ],
)
def test_every_user_mistake_is_one_paragraph(cli_here, tiny_data, tmp_path, args, text):
    file = tmp_path / "a-file"
    file.write_text("not a folder")
    args = [a.format(file=file) for a in args]
    data = [] if "data.data_dir" in args[0] else [f"data.data_dir={tiny_data}"]
    code, out, err = cli_here(tmp_path, *data, *TINY_OVERRIDES, *args)
    assert code == 1
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and text in errors[0], err
    (metrics,) = (tmp_path / "outputs").glob("*/*/metrics.json")
    assert json.loads(metrics.read_text())["status"] == "failed"


def test_an_accelerator_this_machine_lacks_is_one_paragraph(cli_here, tiny_data, tmp_path):
    pytest.importorskip("torch", reason="torch is a dependency")
    import importlib.util

    if importlib.util.find_spec("torch_xla") is not None:
        pytest.skip("this machine has torch_xla")
    code, out, err = cli_here(tmp_path, f"data.data_dir={tiny_data}", "trainer.accelerator=tpu")
    assert code == 1 and "Traceback" not in out + err
    assert "error: trainer.accelerator=tpu: tpu not available on this machine" in err
    (metrics,) = (tmp_path / "outputs").glob("*/*/metrics.json")
    assert json.loads(metrics.read_text())["status"] == "skipped"


def test_a_folder_that_cannot_be_created_is_named_before_the_run(cli_here, tiny_data, tmp_path):
    # sysfs refuses new folders even to root: a real read-only place on every Linux machine.
    for args in (["hydra.run.dir=/sys/mnistx-test/run"], ["-m", "hydra.sweep.dir=/sys/x/y"]):
        code, out, err = cli_here(tmp_path, f"data.data_dir={tiny_data}", *args)
        assert code == 1 and "Traceback" not in out + err
        assert "error: Cannot create the run folder /sys/" in err
    code, out, err = cli_here(Path("/sys/kernel"), f"data.data_dir={tiny_data}")
    assert code == 1 and "Cannot create the run folder outputs" in err and "Traceback" not in err


def test_a_small_validation_split_warns(cli_here, tiny_data, tmp_path):
    code, out, err = cli_here(
        tmp_path,
        f"data.data_dir={tiny_data}",
        *TINY_OVERRIDES,
        "data.val_size=1",
        "trainer.max_epochs=1",
    )
    assert code == 0
    assert "data.val_size=1: with so few validation images" in " ".join((out + err).split())


def test_data_dir_with_a_tilde_is_the_home_folder(cli_here, tiny_data, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "mn").symlink_to(tiny_data)
    monkeypatch.setenv("HOME", str(home))
    code, out, err = cli_here(
        tmp_path, "data.data_dir='~/mn'", *TINY_OVERRIDES, "trainer.max_epochs=1"
    )
    assert code == 0, err
    (metrics,) = (tmp_path / "outputs").glob("*/*/metrics.json")
    assert json.loads(metrics.read_text())["status"] == "ok"


def _labels(raw: Path, prefix: str, change) -> None:
    path = raw / f"{prefix}-labels-idx1-ubyte"
    labels = np.frombuffer(path.read_bytes()[8:], dtype=np.uint8)
    write_idx(path, change(labels.copy()))


def _wrong_magic(raw: Path) -> None:
    path = raw / "t10k-images-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08\x02" + path.read_bytes()[4:])


@pytest.mark.parametrize(
    "damage,text",
    [
        (
            lambda raw: _labels(raw, "train", lambda y: y[:-1]),
            "train-labels-idx1-ubyte holds 599 labels but",
        ),
        (
            lambda raw: _labels(raw, "t10k", lambda y: y[:-3]),
            "t10k-labels-idx1-ubyte holds 197 labels but",
        ),
        (
            lambda raw: _labels(raw, "t10k", lambda y: np.where(y == 3, 12, y)),
            "t10k-labels-idx1-ubyte has a label 12, but the dataset has 10 classes",
        ),
        (
            _wrong_magic,
            "should be the magic number 0x00000801 (labels) or 0x00000803 (images), "
            "and are 0x00000802",
        ),
    ],
    ids=["train_count", "test_count", "label_range", "magic"],
)
def test_bad_data_files_are_named_before_training(cli_here, tmp_path, damage, text):
    root = make_tiny_dataset(tmp_path / "data")
    damage(root / "MNIST" / "raw")
    code, out, err = cli_here(tmp_path, f"data.data_dir={root}", *TINY_OVERRIDES)
    assert code == 1 and "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and text in errors[0], err
    (run,) = (tmp_path / "outputs").glob("*/*")
    assert not list(run.glob("events.out.*")) and not (run / "checkpoints").exists()
