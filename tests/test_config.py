"""The real conf/ composes for every option, and builds what its keys promise."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mnistx.models.networks import ACTIVATIONS, build_network
from mnistx.runs.compose import compose_config

GROUPS = {
    "model": ["mlp", "cnn"],
    "optimizer": ["sgd", "adam", "rmsprop", "adamw", "adagrad", "adadelta"],
    "loss": ["cross_entropy", "nll", "mse", "bce"],
    "scheduler": ["none", "step", "cosine", "onecycle"],
    "data": ["mnist", "fashion_mnist", "kmnist"],
}


def _compose(*overrides: str):
    return compose_config(["output_dir=/unused", *overrides])


def test_defaults():
    cfg = _compose()
    assert cfg.seed == 42
    assert cfg.data.val_size == 5000 and cfg.data.batch_size == 128
    assert cfg.data.mean == pytest.approx(0.1307) and cfg.data.std == pytest.approx(0.3081)
    assert cfg.model._target_ == "mnistx.models.networks.MLP"
    assert list(cfg.model.hidden_sizes) == [128, 256]
    assert cfg.trainer.accelerator == "auto"


def test_data_dir_follows_environment(monkeypatch):
    assert _compose().data.data_dir == "data"
    monkeypatch.setenv("MNISTX_DATA_DIR", "/somewhere/else")
    assert _compose().data.data_dir == "/somewhere/else"


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_every_option_composes_and_builds(group, option):
    cfg = _compose(f"{group}={option}")
    net = build_network(cfg.model)
    opt = instantiate(cfg.optimizer)(net.parameters())
    assert opt.param_groups[0]["lr"] == cfg.optimizer.lr
    loss = instantiate(cfg.loss)
    logits = net(torch.zeros(4, cfg.data.channels, cfg.data.image_size, cfg.data.image_size))
    assert logits.shape == (4, cfg.data.num_classes)
    assert torch.isfinite(loss(logits, torch.tensor([0, 1, 2, 3])))
    if cfg.scheduler._target_ is not None:
        assert cfg.scheduler.interval in ("step", "epoch")


def test_default_architectures_match_tutorials():
    mlp = build_network(_compose("model=mlp").model)
    linears = [m for m in mlp.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 128), (128, 256), (256, 10)]
    cnn = build_network(_compose("model=cnn").model)
    convs = [m for m in cnn.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size) for m in convs] == [
        (1, 32, (3, 3)),
        (32, 64, (3, 3)),
    ]
    linears = [m for m in cnn.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(1600, 64), (64, 10)]
    assert sum(p.numel() for p in cnn.parameters()) == 121_930


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_activation_override(model, name):
    net = build_network(_compose(f"model={model}", f"model.activation={name}").model)
    assert any(isinstance(m, ACTIVATIONS[name]) for m in net.modules())


def test_sizes_overrides():
    mlp = build_network(_compose("model.hidden_sizes=[32,16,8]", "model.batch_norm=true").model)
    linears = [m for m in mlp.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [32, 16, 8, 10]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in mlp.modules()) == 3
    cnn = build_network(
        _compose(
            "model=cnn", "model.channels=[8,16]", "model.fc_hidden=20", "model.dropout=0.5"
        ).model
    )
    assert [m.out_channels for m in cnn.modules() if isinstance(m, torch.nn.Conv2d)] == [8, 16]
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in cnn.modules())
    assert [m.out_features for m in cnn.modules() if isinstance(m, torch.nn.Linear)] == [20, 10]
    # Blocks of two "same" convolutions: 28 -> 14 -> 7 before the head.
    deep = build_network(
        _compose(
            "model=cnn",
            "model.channels=[8,16]",
            "model.convs_per_block=2",
            "model.padding=1",
            "model.channels_last=true",
        ).model
    )
    assert [m.out_channels for m in deep.modules() if isinstance(m, torch.nn.Conv2d)] == [
        8,
        8,
        16,
        16,
    ]
    assert deep.classifier[1].in_features == 16 * 7 * 7
    assert deep.features[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_momentum_where_the_optimizer_has_one():
    for name in ("sgd", "rmsprop"):
        cfg = _compose(f"optimizer={name}", "optimizer.momentum=0.5", "optimizer.weight_decay=1e-4")
        opt = instantiate(cfg.optimizer)(torch.nn.Linear(2, 2).parameters())
        assert opt.param_groups[0]["momentum"] == 0.5
        assert opt.param_groups[0]["weight_decay"] == 1e-4


@pytest.mark.parametrize(
    "experiment,expect",
    [
        (
            "tutorial_mlp_sigmoid",
            dict(hidden=[128, 256], act="sigmoid", opt="SGD", lr=0.2, bs=64, ep=10),
        ),
        ("tutorial_cnn_sgd", dict(hidden=None, act="relu", opt="SGD", lr=0.01, bs=32, ep=10)),
        (
            "tutorial_mlp_adam",
            dict(hidden=[64, 64, 64], act="relu", opt="Adam", lr=1e-3, bs=15, ep=2),
        ),
    ],
)
def test_tutorial_presets(experiment, expect):
    cfg = _compose(f"experiment={experiment}")
    if expect["hidden"] is not None:
        assert list(cfg.model.hidden_sizes) == expect["hidden"]
    else:
        assert cfg.model._target_ == "mnistx.models.networks.CNN"
    assert cfg.model.activation == expect["act"]
    assert cfg.optimizer._target_.endswith(expect["opt"])
    assert cfg.optimizer.lr == expect["lr"]
    assert cfg.data.batch_size == expect["bs"] and cfg.trainer.max_epochs == expect["ep"]
    # A user override still wins over the preset.
    assert _compose(f"experiment={experiment}", "trainer.max_epochs=1").trainer.max_epochs == 1


@pytest.mark.parametrize("experiment", ["fast_mlp", "fast_cnn", "best_cnn"])
def test_speed_presets_build(experiment):
    cfg = _compose(f"experiment={experiment}")
    net = build_network(cfg.model)
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert cfg.model.batch_norm and cfg.scheduler.interval == "step"  # one-cycle
    if experiment == "best_cnn":
        # Every ingredient the recipe names is on, as config keys a user can change.
        aug = instantiate(cfg.augment)
        assert not aug.identity and aug.degrees > 0 and aug.translate > 0
        assert 0 < cfg.callbacks.ema.decay < 1
        assert cfg.loss.label_smoothing > 0
        assert cfg.model.channels_last


def test_every_config_folder_is_a_listed_package():
    """An unlisted folder of YAML files makes setuptools warn at every install (and a plain
    `pip install .` would leave its files out)."""
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    text = (repo / "pyproject.toml").read_text()  # no tomllib before Python 3.11
    listed = set(re.findall(r'"(mnistx[\w.]*)"', text.split("packages = [", 1)[1].split("]")[0]))
    folders = {
        "mnistx." + ".".join(p.relative_to(repo).parts)
        for p in (repo / "conf").rglob("*")
        if p.is_dir() and any(p.glob("*.yaml"))
    }
    assert folders | {"mnistx.conf"} <= listed


@pytest.mark.parametrize(
    "experiment",
    [
        "null",
        "best_cnn",
        "fast_cnn",
        "fast_mlp",
        "tutorial_cnn_sgd",
        "tutorial_mlp_adam",
        "tutorial_mlp_sigmoid",
    ],
)
@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["model=cnn", "augment=affine", "scheduler=step"],
        ["hparams_search=optuna"],
        ["sweep=optimizers"],
    ],
)
def test_every_shipped_config_passes_the_checks(experiment, extra):
    from mnistx.config.checks import check_config

    chosen = [] if experiment == "null" else [f"experiment={experiment}"]
    check_config(_compose(*chosen, *extra))


def test_run_and_sweep_folders_are_made_under_outputs():
    from mnistx.runs.layout import OUTPUTS

    cfg = compose_config(["output_dir=/unused"], with_hydra=True)
    raw = OmegaConf.to_container(cfg.hydra, resolve=False)
    assert f",{OUTPUTS}/" in raw["run"]["dir"] and f"{OUTPUTS}/multirun" in raw["sweep"]["dir"]


def _callbacks(*overrides: str) -> dict:
    from hydra.utils import instantiate

    cfg = _compose(*overrides)
    return {name: instantiate(node) for name, node in cfg.callbacks.items() if node}


def test_callbacks_are_chosen_by_the_config():
    from lightning.pytorch.callbacks import EMAWeightAveraging, ModelCheckpoint

    from mnistx.training.callbacks import ProgressBar

    default = _callbacks()
    assert default["ema"] is None  # decay 0: off
    assert isinstance(default["progress_bar"], ProgressBar)
    assert isinstance(default["model_checkpoint"], ModelCheckpoint)
    ema = _callbacks("callbacks=ema")
    assert isinstance(ema["ema"], EMAWeightAveraging) and ema.keys() == default.keys()
    assert isinstance(_callbacks("callbacks.ema.decay=0.99")["ema"], EMAWeightAveraging)
    assert _callbacks("callbacks=none") == {}
    assert _callbacks("trainer.enable_progress_bar=false")["progress_bar"] is None


def test_a_run_without_callbacks_tests_its_final_weights(tiny_data, tmp_path):
    from helpers import TINY_OVERRIDES

    from mnistx.training.recipe import train

    tiny = [o for o in TINY_OVERRIDES if not o.startswith("callbacks.")]
    cfg = compose_config(
        [f"data.data_dir={tiny_data}", f"output_dir={tmp_path / 'run'}", *tiny, "callbacks=none"]
    )
    metrics = train(cfg)
    assert metrics["status"] == "ok" and metrics["tested_weights"] == "last"
    assert metrics["best_checkpoint"] is None and metrics["test/acc"] is not None
    assert not list((tmp_path / "run").rglob("best.ckpt")) + list(
        (tmp_path / "run").rglob("last.ckpt")
    )
    assert not list((tmp_path / "run").glob("*.png"))
