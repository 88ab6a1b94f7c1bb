"""K networks of one shape run as one: each parameter's K tensors stacked on a leading
model dimension, so a step is a few batched products (and grouped convolutions) instead of
K small ones; backward gives each network's slice the gradient it would get alone.
Randomness (dropout, RReLU) is drawn per network from its own generator state, so a
network's masks are the ones it draws when trained alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mnistx.models.networks import CNN


def _slots(net: nn.Module) -> list[tuple[nn.Module, nn.Module | None]]:
    """The network's layers in the order its forward pass runs them, each with the Dropout
    that follows it (None: none; a network built with dropout 0 has no Dropout layers)."""
    order: list[nn.Module] = (
        [*net.features, *net.classifier] if isinstance(net, CNN) else list(net.children())
    )
    slots: list[list[Any]] = []
    for layer in order:
        if isinstance(layer, nn.Dropout) and slots:
            slots[-1][1] = layer
        else:
            slots.append([layer, None])
    return [(layer, drop) for layer, drop in slots]


class StackedNetworks(nn.Module):
    """K networks of one shape as one module: each parameter of theirs stacked into one
    tensor with a leading model dimension [K, ...] (no copy per step), and a forward pass of
    K batches at once [K, B, ...]. `write_back` puts each network's slice back into it.

    `rng(k, fn)` runs `fn` with network k's random state in place (dropout masks)."""

    def __init__(self, nets: Sequence[nn.Module]) -> None:
        super().__init__()
        self.k = len(nets)
        self.per_net = [_slots(n) for n in nets]
        shapes = {tuple(_shape(layer) for layer, _ in slots) for slots in self.per_net}
        if len(shapes) != 1:
            raise ValueError("the networks of a stack must have the same layers")
        for layer, _ in self.per_net[0]:
            if any(True for _ in layer.parameters()) and not isinstance(
                layer, nn.Linear | nn.Conv2d
            ):
                raise ValueError(f"{type(layer).__name__} has weights and cannot be stacked")
        # In the order of each network's own parameters (its optimizer state's order).
        self.slots = [
            (i, kind)
            for i, (layer, _) in enumerate(self.per_net[0])
            for kind, _ in layer.named_parameters(recurse=False)
        ]
        # A list, in that order: the optimizer's state is matched to parameters by position.
        self.stacked = nn.ParameterList(
            [
                nn.Parameter(
                    torch.stack([getattr(net[i][0], kind).detach() for net in self.per_net])
                )
                for i, kind in self.slots
            ]
        )
        self._position = {slot: j for j, slot in enumerate(self.slots)}

    def weight(self, i: int, kind: str) -> torch.Tensor | None:
        j = self._position.get((i, kind))
        return None if j is None else self.stacked[j]

    @torch.no_grad()
    def write_back(self) -> None:
        """Each network's parameters set to its slice of the stack."""
        for k, net in enumerate(self.per_net):
            for (i, kind), stacked in zip(self.slots, self.stacked, strict=True):
                getattr(net[i][0], kind).copy_(stacked[k])

    def forward(self, x: torch.Tensor, training: bool, rng: Callable) -> torch.Tensor:
        k = self.k
        grouped = False  # [B, K*C, H, W]: convolution layout, networks side by side
        for i, (layer, _) in enumerate(self.per_net[0]):
            column: list[Any] = [net[i][0] for net in self.per_net]
            w, b = self.weight(i, "weight"), self.weight(i, "bias")
            if isinstance(layer, nn.Conv2d):
                if not grouped:
                    x, grouped = _to_grouped(x), True
                assert w is not None
                kernel = w.reshape(-1, *w.shape[2:])
                bias = None if b is None else b.reshape(-1)
                x = F.conv2d(x, kernel, bias, layer.stride, layer.padding, layer.dilation, k)
            elif isinstance(layer, nn.MaxPool2d):
                x = layer(x)
            elif isinstance(layer, nn.Flatten):
                x = _from_grouped(x, k) if grouped else x.reshape(k, x.shape[1], -1)
                grouped = False
            elif isinstance(layer, nn.Linear):
                assert w is not None
                if b is not None:
                    x = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))
                else:
                    x = torch.bmm(x, w.transpose(1, 2))
            elif isinstance(layer, nn.RReLU):  # draws a slope per unit while training
                x = _per_net(x, column, rng if training else _plain, grouped)
            elif all(type(c) is type(layer) for c in column):  # one activation for all
                x = layer(x)
            else:  # each network its own activation (model.activation swept)
                x = _per_net(x, column, _plain, grouped)
            drops = [net[i][1] for net in self.per_net]
            if training and any(d is not None for d in drops):
                kept = [d if d is not None else nn.Identity() for d in drops]
                x = _per_net(x, kept, rng, grouped)
        return x


def _shape(layer: nn.Module) -> tuple[Any, ...]:
    """What must match across a stack: the kind of layer and its weights' shapes (the
    activation may differ)."""
    if isinstance(layer, nn.Linear | nn.Conv2d | nn.MaxPool2d | nn.Flatten):
        return (type(layer).__name__, *(tuple(p.shape) for p in layer.parameters()))
    return ("elementwise",)


def _plain(k: int, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
    return fn()


def _to_grouped(x: torch.Tensor) -> torch.Tensor:
    """[K, B, C, H, W] -> [B, K*C, H, W]."""
    k, b, c, h, w = x.shape
    return x.permute(1, 0, 2, 3, 4).reshape(b, k * c, h, w)


def _from_grouped(x: torch.Tensor, k: int) -> torch.Tensor:
    """[B, K*C, H, W] -> [K, B, C*H*W], each network's features flattened as Flatten does."""
    b, kc, h, w = x.shape
    return x.reshape(b, k, kc // k, h, w).transpose(0, 1).reshape(k, b, -1)


def _per_net(
    x: torch.Tensor, column: list[nn.Module], rng: Callable, grouped: bool
) -> torch.Tensor:
    """Each network's layer on its own slice, run through `rng(k, fn)` (its random state)."""
    k = len(column)
    if grouped:
        parts = x.chunk(k, dim=1)
        return torch.cat([rng(i, lambda i=i: column[i](parts[i])) for i in range(k)], dim=1)
    return torch.stack([rng(i, lambda i=i: column[i](x[i])) for i in range(k)])
