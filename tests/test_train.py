"""Real training runs (tiny dataset, real Lightning Trainer) and what they leave behind."""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as L
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mnistx.data.datamodule import MNISTDataModule
from mnistx.errors import DivergedError, UserError
from mnistx.training.module import ClassifierModule
from mnistx.training.recipe import train

METRIC_KEYS = {
    "test/acc",
    "test/loss",
    "val/acc_best",
    "best_epoch",
    "epochs",
    "train_seconds",
    "seconds_per_epoch",
    "params",
    "accelerator",
    "status",
    "overrides",
}


def _events(run: Path) -> EventAccumulator:
    ea = EventAccumulator(str(run), size_guidance={"scalars": 0})
    ea.Reload()
    return ea


def test_default_run_leaves_metrics_checkpoints_and_tensorboard(make_cfg, tmp_path):
    cfg = make_cfg("trainer.max_epochs=3")
    metrics = train(cfg, overrides=["trainer.max_epochs=3"])
    run = tmp_path / "run"
    on_disk = json.loads((run / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    assert on_disk.keys() >= METRIC_KEYS
    assert on_disk["status"] == "ok" and on_disk["overrides"] == ["trainer.max_epochs=3"]
    assert on_disk["epochs"] == 3 and 1 <= on_disk["best_epoch"] <= 3
    assert on_disk["params"] == 136_074 and on_disk["accelerator"] == "cpu"
    assert on_disk["test/acc"] > 0.5  # chance is 0.1: this fails if training breaks
    # Accuracies to what the test set resolves (0.0001), not float32's 0.7149999737739563.
    accuracies = [v for k, v in on_disk.items() if k.endswith(("/acc", "/acc_best"))]
    accuracies += on_disk["history"]["train/acc"] + on_disk["history"]["val/acc"]
    assert len(accuracies) == 10 and all(round(v, 4) == v for v in accuracies)
    # Both are rounded to the millisecond.
    assert on_disk["seconds_per_epoch"] == pytest.approx(on_disk["train_seconds"] / 3, abs=1e-3)
    assert (run / "checkpoints" / "best.ckpt").exists() and (
        run / "checkpoints" / "last.ckpt"
    ).exists()

    ea = _events(run)
    tags = set(ea.Tags()["scalars"])
    for tag in (
        "train/loss",
        "train/acc",
        "val/loss",
        "val/acc",
        "val/acc_best",
        "test/loss",
        "test/acc",
    ):
        assert tag in tags, tag
    assert "train/lr" in tags and not any(t.startswith("lr-") for t in tags)
    assert len(ea.Scalars("val/acc")) == 3 and len(ea.Scalars("train/loss")) == 3
    best = max(e.value for e in ea.Scalars("val/acc"))
    assert ea.Scalars("val/acc_best")[-1].value == pytest.approx(best)
    assert ea.Scalars("test/acc")[-1].value == pytest.approx(on_disk["test/acc"])
    assert on_disk["val/acc_best"] == pytest.approx(best)
    # HParams tab: the run's settings with val/acc_best and test/acc as its metrics.
    content = b"".join(ea.PluginTagToContent("hparams").values())
    for text in (b"val/acc_best", b"test/acc", b"optimizer/lr", b"model/activation"):
        assert text in content


def _test_acc(checkpoint: Path, data_dir: str) -> float:
    module = ClassifierModule.load_from_checkpoint(checkpoint)
    dm = MNISTDataModule(data_dir=data_dir, val_size=100)
    dm.setup()
    x, y = dm.splits["test"].tensors()
    with torch.no_grad():
        return (module(x).argmax(1) == y).float().mean().item()


def test_test_metrics_come_from_the_best_checkpoint(make_cfg, tmp_path):
    metrics = train(make_cfg("trainer.max_epochs=3", "seed=0"))
    best = tmp_path / "run" / "checkpoints" / "best.ckpt"
    ckpt = torch.load(best, weights_only=True)  # plain hyperparameters: loads safely
    assert ckpt["epoch"] + 1 == metrics["best_epoch"] and metrics["tested_weights"] == "best"
    data_dir = str(make_cfg().data.data_dir)
    assert _test_acc(best, data_dir) == pytest.approx(metrics["test/acc"], abs=1e-6)


def test_last_checkpoint_is_the_final_epoch_and_test_checkpoint_last_tests_it(make_cfg, tmp_path):
    # mode=min keeps the *worst* epoch as best.ckpt, so best and last surely differ (and the
    # final epochs do not improve what best.ckpt monitors: last.ckpt must follow regardless).
    metrics = train(
        make_cfg(
            "trainer.max_epochs=3",
            "seed=0",
            "test_checkpoint=last",
            "callbacks.model_checkpoint.mode=min",
        )
    )
    best, last = (tmp_path / "run" / "checkpoints" / f"{n}.ckpt" for n in ("best", "last"))
    epochs = [torch.load(c, weights_only=True)["epoch"] for c in (best, last)]
    assert epochs == [0, 2]  # counted from 0
    data_dir = str(make_cfg().data.data_dir)
    assert metrics["tested_weights"] == "last"
    assert _test_acc(last, data_dir) == pytest.approx(metrics["test/acc"], abs=1e-6)
    assert _test_acc(best, data_dir) != pytest.approx(metrics["test/acc"], abs=1e-6)


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=cnn", "model.channels=[4,8]", "model.fc_hidden=16"],
        ["loss=nll", "optimizer=sgd", "scheduler=step"],
        ["loss=mse", "optimizer=rmsprop", "scheduler=cosine", "model.activation=tanh"],
        ["optimizer=adamw", "scheduler=onecycle", "model.batch_norm=true", "model.dropout=0.1"],
        ["optimizer=adadelta", "loss=cross_entropy", "loss.label_smoothing=0.1"],
        ["optimizer=adagrad", "model.activation=prelu", "seed=0"],
    ],
)
def test_combinations_train(make_cfg, overrides):
    metrics = train(make_cfg("trainer.max_epochs=1", *overrides))
    assert metrics["status"] == "ok" and 0.0 <= metrics["test/acc"] <= 1.0
    assert metrics["test/loss"] == metrics["test/loss"]  # not NaN


def test_onecycle_steps_per_batch(make_cfg, tmp_path):
    train(make_cfg("scheduler=onecycle", "trainer.max_epochs=3", "optimizer.lr=0.01"))
    lrs = [e.value for e in _events(tmp_path / "run").Scalars("train/lr")]
    # Logged at each epoch start: warm-up start (max_lr / 25), just past the peak (one third
    # of the run, peak at a quarter), then on the way down.
    assert lrs[0] == pytest.approx(0.01 / 25)
    assert 0.009 < lrs[1] < 0.01 and lrs[2] < lrs[1]


def test_without_checkpointing_tests_the_final_weights(make_cfg, tmp_path):
    metrics = train(
        make_cfg(
            "~callbacks.model_checkpoint",
            "~callbacks.last_checkpoint",
            "+trainer.enable_checkpointing=false",
        )
    )
    assert metrics["status"] == "ok" and metrics["best_checkpoint"] is None
    assert metrics["test/acc"] is not None and not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize(
    "override,text",
    [
        ("optimizer.lr=0", "optimizer.lr"),
        ("optimizer.lr=-0.1", "optimizer.lr=-0.1 must be a positive number"),
        ("data.batch_size=0", "data.batch_size=0 must be a positive integer"),
        ("data.batch_size=100000", "larger than the training split"),
        ("data.val_size=-1", "data.val_size=-1 must be a positive integer"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 must be an integer >= 1"),
        ("model.activation=swish", "model.activation"),
        ("trainer.accelerator=gpu", "gpu not available"),
        ("+optimizer.momentum=0.9", "optimizer"),
        ("optimizer.fused=maybe", "optimizer.fused=maybe must be true or false"),
        (
            "optimizer=rmsprop +optimizer.fused=true",
            "optimizer.fused is not an argument of torch.optim.RMSprop",
        ),
        ("trainer.accelerator=abacus", "is not an accelerator Lightning knows"),
        ("augment.degrees=-5", "augment settings"),
        ("augment.scale=[1.2,0.8]", "augment settings"),
        ("augment.elastic_sigma=0", "augment settings"),
        ("callbacks.ema.decay=1.5", "callbacks.ema.decay"),
        ("test_checkpoint=final", "test_checkpoint=final must be best"),
        ("model=cnn model.convs_per_block=0", "model.convs_per_block"),
        ("model.compile={mode:bogus}", "model.compile"),
    ],
)
def test_bad_values_are_user_errors(make_cfg, override, text):
    if override == "trainer.accelerator=gpu" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(UserError, match=text.replace(".", r"\.")):
        train(make_cfg(*override.split()))


def test_a_nan_loss_stops_training_at_once(make_cfg):
    cfg = make_cfg("optimizer=sgd", "optimizer.lr=1e8", "data.batch_size=8")
    with pytest.raises(DivergedError, match=r"at step (\d+) of epoch 1 \(optimizer.lr=") as e:
        train(cfg)
    step = int(e.value.args[0].split("at step ")[1].split()[0])
    assert step < 500 // 8  # well before the end of the first epoch


def test_target_acc_stops_at_the_first_epoch_reaching_it(make_cfg):
    metrics = train(make_cfg("trainer.max_epochs=30", "target_acc=0.5"))
    curve = metrics["history"]["val/acc"]
    assert metrics["reached_target"] and curve[-1] >= 0.5
    assert all(acc < 0.5 for acc in curve[:-1])  # no earlier epoch had reached it
    assert metrics["epochs"] == len(curve) < 30
    assert 0 < metrics["seconds_to_target"] <= metrics["train_seconds"]
    assert metrics["test/acc"] is not None


def test_target_acc_not_reached_trains_all_epochs(make_cfg):
    metrics = train(make_cfg("trainer.max_epochs=2", "target_acc=1.0"))
    assert metrics["epochs"] == 2 and metrics["reached_target"] is False
    assert metrics["seconds_to_target"] is None


def test_compiled_network_keeps_checkpoint_keys_and_reports_compile_time(make_cfg):
    # The eager backend runs Dynamo's tracing without a C++ build (inductor takes ~40 s here).
    metrics = train(make_cfg("model.compile={backend:eager}", "trainer.max_epochs=1"))
    assert metrics["status"] == "ok"
    assert metrics["compile_seconds"] is not None and metrics["compile_seconds"] > 0
    ckpt = torch.load(metrics["best_checkpoint"], map_location="cpu", weights_only=True)
    assert "net.1.weight" in ckpt["state_dict"]
    assert not any("_orig_mod" in k for k in ckpt["state_dict"])


class _OptimizerSpy(L.Callback):
    def on_train_start(self, trainer, pl_module) -> None:
        self.fused = trainer.optimizers[0].defaults.get("fused")


@pytest.mark.parametrize(
    "overrides,fused",
    [
        ([], True),
        (["+trainer.gradient_clip_val=0.5"], True),  # fp32 gradients clip before the step
        (["optimizer=sgd_momentum"], True),
        (["optimizer=rmsprop"], None),  # torch has no fused RMSprop
        pytest.param(
            [
                "trainer.accelerator=gpu",
                "trainer.precision=16-mixed",
                "+trainer.gradient_clip_val=0.5",
            ],
            False,
            marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
        ),
    ],
)
def test_optimizers_are_fused_unless_fp16_clipping_forbids_it(make_cfg, overrides, fused):
    spy = _OptimizerSpy()
    metrics = train(make_cfg("trainer.max_epochs=1", *overrides), extra_callbacks=[spy])
    assert metrics["status"] == "ok" and spy.fused == fused
