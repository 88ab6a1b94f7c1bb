"""A saved run is data, never code (issue 26, part 1): crafted checkpoints and configs that name
foreign `_target_`s (file writers, os/subprocess calls, pickle loaders; nested in lists and
dicts, in `_args_`, with `_partial_`) or acting resolvers are refused by every command that
reads a run, with one paragraph naming the file and the key; no marker file appears and no
file changes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml
from helpers import TINY_OVERRIDES, run_cli, snapshot

from mnistx.errors import UserError

# Its module fixtures train: all its tests on one xdist worker, so they train once.
pytestmark = pytest.mark.xdist_group("saved_runs_are_data")

# (where in the checkpoint's hyperparameters, what to put there); MARKER is filled in.
CKPT_ATTACKS = {
    "open": (("model", "activation"), {"_target_": "builtins.open", "file": "MARKER", "mode": "w"}),
    "os_system": (("loss",), {"_target_": "os.system", "_args_": ["touch MARKER"]}),
    "subprocess_in_args": (
        ("model", "hidden_sizes"),
        [{"_target_": "subprocess.call", "_args_": [["touch", "MARKER"]]}],
    ),
    "pickle_partial": (
        ("optimizer",),
        {"_target_": "numpy.load", "_partial_": True, "file": "MARKER", "allow_pickle": True},
    ),
    "nested_dict": (
        ("augment", "extra"),
        {"inner": {"_target_": "pathlib.Path.touch", "self": "MARKER"}},
    ),
    "import_side_effect": (("model",), {"_target_": "antigravity.fly"}),
}
# (key path in .hydra/config.yaml, value)
CONFIG_ATTACKS = {
    "data_target": (("data", "_target_"), "os.system"),
    "dataset_string": (("data", "dataset"), "os.system"),
    "callback": (("callbacks", "evil"), {"_target_": "builtins.exec", "_args_": ["1"]}),
    "resolver": (("data", "data_dir"), "${unique_dir:MARKER}"),
    "trusted_list": (("trusted_targets",), ["builtins.open"]),
    "checkpoints_elsewhere": (("callbacks", "last_checkpoint", "dirpath"), "MARKER"),
}


@pytest.fixture(scope="module")
def good_run(tiny_data, tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("good")
    run_cli(cwd, f"data.data_dir={tiny_data}", *TINY_OVERRIDES, "hydra.run.dir=run")
    return cwd / "run"


def _put(tree: dict, path: tuple[str, ...], value: object) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _fill(value: object, marker: Path) -> object:
    if isinstance(value, dict):
        return {k: _fill(v, marker) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, marker) for v in value]
    return value.replace("MARKER", str(marker)) if isinstance(value, str) else value


def _crafted_checkpoint(good_run: Path, tmp_path: Path, attack: str) -> Path:
    run = tmp_path / f"ckpt-{attack}"
    shutil.copytree(good_run, run)
    path, value = CKPT_ATTACKS[attack]
    for ckpt in (run / "checkpoints").glob("*.ckpt"):
        state = torch.load(ckpt, weights_only=True)
        _put(state["hyper_parameters"], path, _fill(value, tmp_path / "MARKER"))
        torch.save(state, ckpt)
    return run


def _crafted_config(good_run: Path, tmp_path: Path, attack: str) -> Path:
    run = tmp_path / f"cfg-{attack}"
    shutil.copytree(good_run, run)
    config = run / ".hydra" / "config.yaml"
    data = yaml.safe_load(config.read_text())
    path, value = CONFIG_ATTACKS[attack]
    _put(data, path, _fill(value, tmp_path / "MARKER"))
    config.write_text(yaml.safe_dump(data))
    return run


def _every_reader(run: Path, image: Path, capture) -> list[tuple[int, str]]:
    """eval, predict, export and serve of `run` (in-process): each one's exit status and
    stderr."""
    from mnistx import eval as evaluate
    from mnistx import export, predict, serve

    answers = []
    for main, args in (
        (evaluate.main, [f"run={run}"]),
        (predict.main, [f"run={run}", f"images={image}"]),
        (export.main, [f"run={run}"]),
        (serve.main, [f"run={run}", "port=0"]),
    ):
        code = main(args)
        answers.append((code, capture.readouterr().err))
    return answers


def _refused(code: int, err: str, tmp_path: Path, run: Path, before: dict[str, str]) -> None:
    assert code == 1, err
    assert "Traceback" not in err and err.strip().startswith("error:"), err
    assert not (tmp_path / "MARKER").exists()
    assert snapshot(run) == before


@pytest.mark.parametrize("attack", sorted(CKPT_ATTACKS))
def test_a_crafted_checkpoint_runs_nothing_under_eval_predict_serve(
    good_run, tmp_path, attack, capsys
):
    run = _crafted_checkpoint(good_run, tmp_path, attack)
    (tmp_path / "x.png").write_bytes((good_run / "checkpoints" / "best.ckpt").read_bytes()[:10])
    before = snapshot(run)
    for code, err in _every_reader(run, tmp_path / "x.png", capsys):
        _refused(code, err, tmp_path, run, before)
        assert "best.ckpt (its saved hyperparameters)" in err and "hyper_parameters." in err


@pytest.mark.parametrize("attack", sorted(CONFIG_ATTACKS))
def test_a_crafted_run_config_runs_nothing_under_eval_predict_resume(
    good_run, tmp_path, attack, capfd, cli_here
):
    from mnistx import eval as evaluate
    from mnistx import export, predict

    run = _crafted_config(good_run, tmp_path, attack)
    (tmp_path / "x.png").write_bytes(b"not an image")
    before = snapshot(run)
    key = ".".join(CONFIG_ATTACKS[attack][0])
    if attack == "checkpoints_elsewhere":  # only a run that trains on writes there
        code, _, err = cli_here(tmp_path, f"resume={run}", "trainer.max_epochs=3")
        _refused(code, err, tmp_path, run, before)
        assert "lies outside the run's own folder" in err
        return
    if attack == "trusted_list":  # a saved trusted_targets is never honoured: nothing to refuse
        code, _, err = cli_here(tmp_path, f"resume={run}", "trainer.max_epochs=3")
        assert code == 0, err
        assert not (tmp_path / "MARKER").exists()
        return
    for main, args in (
        (evaluate.main, [f"run={run}"]),
        (predict.main, [f"run={run}", f"images={tmp_path / 'x.png'}"]),
        (export.main, [f"run={run}"]),
    ):
        code = main(args)
        err = capfd.readouterr().err
        _refused(code, err, tmp_path, run, before)
        assert "config.yaml" in err and key.split(".")[0] in err
    code, _, err = cli_here(tmp_path, f"resume={run}", "trainer.max_epochs=3")
    _refused(code, err, tmp_path, run, before)


def test_a_crafted_checkpoint_is_refused_by_resume_before_the_folder_is_locked(
    good_run, tmp_path, cli_here
):
    run = _crafted_checkpoint(good_run, tmp_path, "open")
    before = snapshot(run)
    code, _, err = cli_here(tmp_path, f"resume={run}", "trainer.max_epochs=3")
    _refused(code, err, tmp_path, run, before)


def test_a_crafted_sweep_record_passes_no_hydra_callback_or_shell_line(tmp_path, cli_here):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    for hydra_override in (
        "hydra.callbacks.evil._target_=os.system",
        "hydra.launcher.setup=[touch MARKER]",
    ):
        record = {
            "hydra": {
                "overrides": {"task": ["seed=1,2"], "hydra": [hydra_override]},
                "sweeper": {"_target_": "hydra_plugins.mnistx_sweeper.GridSweeper"},
            }
        }
        (sweep / "multirun.yaml").write_text(yaml.safe_dump(record))
        before = snapshot(sweep)
        code, _, err = cli_here(tmp_path, f"resume={sweep}")
        _refused(code, err, tmp_path, sweep, before)
        assert "multirun.yaml" in err and hydra_override in err


def test_the_live_config_builds_only_allowed_targets(make_cfg):
    from mnistx.config.build import build
    from mnistx.config.targets import trusting

    cfg = make_cfg()
    with pytest.raises(UserError, match=r"callbacks\.x\._target_='builtins\.print'"):
        build("callbacks.x", {"_target_": "builtins.print"})
    with pytest.raises(UserError, match="is not an argument of"):
        build("callbacks.x", {"_target_": "lightning.pytorch.callbacks.Timer", "bogus": 1})
    # Families: any optimizer of torch.optim, built though conf/ has no file for it.
    assert build("optimizer", {"_target_": "torch.optim.NAdam", "_partial_": True, "lr": 0.1})
    with pytest.raises(UserError, match="not an MNIST-family dataset"):
        build("data", {**cfg.data, "dataset": "os.system"})
    with trusting(["collections.OrderedDict"]):
        assert build("x", {"_target_": "collections.OrderedDict"}) == {}
    with pytest.raises(UserError):
        build("x", {"_target_": "collections.OrderedDict"})  # trusted only while it said so
    with pytest.raises(UserError, match="trusted_targets"), trusting(["not a name"]):
        pass


BROKEN = {
    ".hydra/config.yaml": {"malformed": "model: [unclosed\n", "empty": "", "a list": "- 1\n- 2\n"},
    "metrics.json": {"truncated": '{"status": "ok", "test/a', "a list": "[1, 2]\n"},
}


@pytest.mark.parametrize(
    "name, content",
    [(name, text) for name, cases in BROKEN.items() for text in cases.values()],
    ids=[f"{name}-{case}" for name, cases in BROKEN.items() for case in cases],
)
def test_a_run_that_cannot_be_read_is_named_with_its_file(good_run, tmp_path, capfd, name, content):
    run = tmp_path / "broken"
    shutil.copytree(good_run, run)
    (run / name).write_text(content)
    (tmp_path / "x.png").write_bytes(b"not an image")
    before = snapshot(run)
    for code, err in _every_reader(run, tmp_path / "x.png", capfd):
        assert code == 1 and "Traceback" not in err, err
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and str(run / name) in errors[0], err
    assert snapshot(run) == before


def test_a_sweeps_swept_keys_are_read_once_per_version_of_its_record(tmp_path, monkeypatch):
    """Every job of a sweep names its folder from the record's swept keys: the file is read
    once, and again only when it changes."""
    from mnistx.runs import sweep_record

    def write(task: list[str]) -> None:
        record = {"hydra": {"overrides": {"task": task, "hydra": []}, "sweeper": {}}}
        (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(record))

    reads: list[Path] = []
    real = sweep_record._plain_record
    monkeypatch.setattr(sweep_record, "_plain_record", lambda p: reads.append(p) or real(p))
    assert sweep_record.swept_keys(tmp_path) == [] and reads == []  # no record: not a sweep
    write(["optimizer.lr=0.1,0.01", "seed=1"])
    for _ in range(3):
        assert sweep_record.swept_keys(tmp_path) == ["optimizer.lr"]
    assert len(reads) == 1
    write(["optimizer.lr=0.1", "seed=1,2,3"])  # rewritten (another size)
    assert sweep_record.swept_keys(tmp_path) == ["seed"] and len(reads) == 2
