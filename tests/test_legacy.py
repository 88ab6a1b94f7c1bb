"""Runs made before the restructure (old module paths in `_target_`s, the nested
`scheduler.scheduler.*` keys) still evaluate and resume; the old keys get one message."""

from __future__ import annotations

import json

import torch
from helpers import TINY_OVERRIDES, run_cli
from omegaconf import OmegaConf

from mnistx.config.legacy import MOVED, flat_scheduler, upgrade

OLD = {new: old for old, new in MOVED.items()}


def _old_target(name):
    for new, old in OLD.items():
        if name == new or (new.endswith(".") and name.startswith(new)):
            return old + name[len(new) :] if new.endswith(".") else old
    return name


def _old_shape(node):
    """A config or hparams dict as mnistx 0.1 wrote it."""
    if isinstance(node, dict):
        out = {k: _old_target(v) if k == "_target_" else _old_shape(v) for k, v in node.items()}
        sched = out.get("scheduler")
        if isinstance(sched, dict) and "interval" in sched:
            inner = {k: v for k, v in sched.items() if k != "interval"}
            out["scheduler"] = {
                "scheduler": inner if inner.get("_target_") else None,
                "interval": sched["interval"],
            }
        bar = (out.get("callbacks") or {}).get("progress_bar")
        if isinstance(bar, dict):
            bar.pop("enabled", None)
        return out
    return node


def test_flat_scheduler_reads_both_shapes():
    old = {"scheduler": {"_target_": "torch.optim.lr_scheduler.StepLR", "gamma": 0.5}}
    assert flat_scheduler({**old, "interval": "step"}) == {
        "_target_": "torch.optim.lr_scheduler.StepLR",
        "gamma": 0.5,
        "interval": "step",
    }
    assert flat_scheduler({"scheduler": None, "interval": "epoch"}) == {
        "_target_": None,
        "interval": "epoch",
    }
    today = {"_target_": None, "interval": "epoch"}
    assert flat_scheduler(today) == today


def test_an_old_run_evaluates_and_extends(tiny_data, tmp_path):
    run_cli(
        tmp_path, f"data.data_dir={tiny_data}", *TINY_OVERRIDES, "trainer.max_epochs=1",
        "scheduler=step",
    )  # fmt: skip
    (run,) = (tmp_path / "outputs").glob("*/*")
    config = run / ".hydra" / "config.yaml"
    old = _old_shape(OmegaConf.to_container(OmegaConf.load(config)))
    assert old["scheduler"]["scheduler"]["_target_"] == "torch.optim.lr_scheduler.StepLR"
    assert old["model"]["_target_"] == "mnistx.models.MLP"
    config.write_text(OmegaConf.to_yaml(old))
    assert OmegaConf.to_container(upgrade(OmegaConf.load(config)))["scheduler"]["step_size"] == 3
    for ckpt in (run / "checkpoints").glob("*.ckpt"):
        state = torch.load(ckpt, weights_only=True)
        state["hyper_parameters"] = _old_shape(dict(state["hyper_parameters"]))
        assert "scheduler" in state["hyper_parameters"]["scheduler"]
        torch.save(state, ckpt)

    proc = run_cli(tmp_path, "run=" + str(run), module="mnistx.eval")
    assert "Traceback" not in proc.stderr
    assert json.loads((run / "eval" / "best" / "eval.json").read_text())["test/acc"] > 0.1

    proc = run_cli(tmp_path, f"resume={run}", "trainer.max_epochs=2")
    assert "Traceback" not in proc.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["epochs"] == 2


def test_the_nested_scheduler_keys_name_their_new_place(cli_here, tmp_path):
    code, _, err = cli_here(tmp_path, "scheduler=step", "scheduler.scheduler.step_size=2")
    assert code == 1 and "Traceback" not in err
    assert "scheduler.scheduler.step_size is now scheduler.step_size" in err
    assert "scheduler.step_size=2" in err
    assert not (tmp_path / "outputs").exists()
