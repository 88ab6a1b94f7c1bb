"""The networks: an MLP and a small CNN, both sized from config."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

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


def _check_sizes(key: str, sizes: Sequence[int]) -> list[int]:
    sizes = list(sizes)
    if any(not isinstance(s, int) or s < 1 for s in sizes):
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
    """Conv [-BatchNorm] -activation -MaxPool2 per channel count, then a small classifier head."""

    def __init__(
        self,
        channels: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        fc_hidden: int | None = 64,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        in_channels: int = 1,
        image_size: int = 28,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        features: list[nn.Module] = []
        size, c_in = image_size, in_channels
        for c in _check_sizes("model.channels", channels):
            size = (size - kernel_size + 1) // 2
            if size < 1:
                raise UserError(
                    f"model.channels={list(channels)} with kernel_size={kernel_size} shrinks "
                    f"{image_size}x{image_size} images below 1 pixel. Use fewer conv layers "
                    "or a smaller model.kernel_size."
                )
            features.append(nn.Conv2d(c_in, c, kernel_size))
            if batch_norm:
                features.append(nn.BatchNorm2d(c))
            features += [make_activation(activation), nn.MaxPool2d(2)]
            c_in = c
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
