"""The networks: an MLP and a small CNN, both sized from config."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from mnistx.config.build import build
from mnistx.config.kinds import in_range
from mnistx.errors import UserError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "prelu": nn.PReLU,
    "rrelu": nn.RReLU,
}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module (PReLU has weights, so every layer needs its own)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise UserError(
            f"Unknown activation {name!r}. Valid values for model.activation: "
            f"{', '.join(ACTIVATIONS)}. Example: model.activation=tanh"
        ) from None


def _check_dropout(dropout: float) -> None:
    in_range(dropout, "model.dropout", 0, 1, "in [0, 1): the share of units dropped", "0.2")


def _check_sizes(key: str, sizes: Sequence[int]) -> list[int]:
    sizes = list(sizes)
    if any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in sizes):
        raise UserError(
            f"{key} must be a list of positive integers, got {sizes}. Example: {key}=[128,256]"
        )
    return sizes


class MLP(nn.Sequential):
    """Flatten, then Linear [-BatchNorm] -activation [-Dropout] per hidden size, then Linear."""

    def __init__(
        self,
        hidden_sizes: Sequence[int] = (128, 256),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        in_channels: int = 1,
        image_size: int = 28,
        num_classes: int = 10,
    ) -> None:
        _check_dropout(dropout)
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_channels * image_size * image_size
        for h in _check_sizes("model.hidden_sizes", hidden_sizes):
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(make_activation(activation))
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)


class CNN(nn.Module):
    """Per channel count a block of `convs_per_block` x (Conv [-BatchNorm] -activation), then
    MaxPool2; then a small classifier head. `padding` keeps each conv's output size ("same" for
    padding = kernel_size // 2); the default 0 is the tutorials' "valid" convolution.
    `pool_first` pools right after each block's last convolution, so its BatchNorm and
    activation run on a quarter of the pixels: faster on CPU. Without BatchNorm and with a
    non-decreasing activation (relu, tanh, ...; not gelu/silu) it computes the same function,
    as max-pooling commutes with it; with BatchNorm it is a different network."""

    def __init__(
        self,
        channels: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        fc_hidden: int | None = 64,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        convs_per_block: int = 1,
        padding: int = 0,
        pool_first: bool = False,
        in_channels: int = 1,
        image_size: int = 28,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        _check_dropout(dropout)
        in_range(kernel_size, "model.kernel_size", 1, None, "a positive integer", "5", integer=True)
        if fc_hidden:  # 0 or null: no hidden layer
            in_range(fc_hidden, "model.fc_hidden", 1, None, "a positive integer", "5", integer=True)
        if convs_per_block < 1 or padding < 0:
            raise UserError(
                f"model.convs_per_block={convs_per_block} must be >= 1 and model.padding="
                f"{padding} >= 0. Example: model.convs_per_block=2 model.padding=1"
            )
        if not list(channels):
            raise UserError(
                "model.channels=[] gives a CNN no convolution block; it needs one channel "
                "count per block. Example: model.channels=[32,64] (or model=mlp for no "
                "convolutions)"
            )
        features: list[nn.Module] = []
        size, c_in = image_size, in_channels
        for c in _check_sizes("model.channels", channels):
            size = (size - convs_per_block * (kernel_size - 1 - 2 * padding)) // 2
            if size < 1:
                raise UserError(
                    f"model.channels={list(channels)} with kernel_size={kernel_size} shrinks "
                    f"{image_size}x{image_size} images below 1 pixel. Use fewer conv layers, "
                    "a smaller model.kernel_size or model.padding=1."
                )
            for i in range(convs_per_block):
                features.append(nn.Conv2d(c_in, c, kernel_size, padding=padding))
                if pool_first and i == convs_per_block - 1:
                    features.append(nn.MaxPool2d(2))
                if batch_norm:
                    features.append(nn.BatchNorm2d(c))
                features.append(make_activation(activation))
                c_in = c
            if not pool_first:
                features.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*features)
        head: list[nn.Module] = [nn.Flatten()]
        width = c_in * size * size
        if dropout:
            head.append(nn.Dropout(dropout))
        if fc_hidden:
            head += [nn.Linear(width, fc_hidden), make_activation(activation)]
            if dropout:
                head.append(nn.Dropout(dropout))
            width = fc_hidden
        head.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x):
        return self.classifier(self.features(x))


def build_network(cfg: Mapping[str, Any] | DictConfig) -> nn.Module:
    """The network a `model` config describes, in the memory layout and compiled as it asks
    (`channels_last`, `compile`: how it runs, not what it is, so not the network's arguments).
    `compile` is true or torch.compile's keyword arguments ({mode: max-autotune}). Compiling is
    in place, so state-dict keys and checkpoints match an uncompiled run's."""
    plain: dict[str, Any] = dict(
        OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg  # type: ignore[arg-type]
    )
    compile_net = plain.pop("compile", False)
    channels_last = plain.pop("channels_last", False)
    net = build("model", plain)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    if compile_net:
        options = {} if compile_net is True else dict(compile_net)
        try:
            net.compile(**options)
        except (RuntimeError, TypeError, ValueError) as e:
            raise UserError(
                f"model.compile={compile_net}: torch.compile rejected it ({e}). Use "
                "model.compile=true, or torch.compile's arguments: "
                "'model.compile={mode:max-autotune}'."
            ) from None
    return net
