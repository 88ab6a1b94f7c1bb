"""Data augmentation applied to whole batches as tensor ops, on whatever device the batch is on.

Per-sample PIL transforms cost more than a small CNN's whole step (see bench/); one
`affine_grid` + `grid_sample` call moves, turns and scales every image of a batch at once, on
the GPU when training there, so the dataset never leaves the device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mnistx.errors import UserError


class BatchAffine(nn.Module):
    """A random affine transform per image: rotation in [-degrees, degrees], a shift of up to
    `translate` x the image size along each axis, and a zoom in [scale[0], scale[1]].

    Pixels shifted in from outside repeat the border, which for MNIST-style data is background
    (in whatever units the images are normalised to). Draws from `generator`, or from torch's
    global RNG on the batch's device (seeded by `seed_everything` and saved in mnistx
    checkpoints on the CPU), so runs repeat exactly under a seed. Labels are not touched.
    """

    def __init__(
        self,
        degrees: float = 0.0,
        translate: float = 0.0,
        scale: Sequence[float] = (1.0, 1.0),
    ) -> None:
        super().__init__()
        scale = tuple(float(s) for s in scale)
        if degrees < 0 or not 0 <= translate < 1 or len(scale) != 2 or not 0 < scale[0] <= scale[1]:
            raise UserError(
                f"augment settings degrees={degrees}, translate={translate}, scale={list(scale)} "
                "are out of range: degrees >= 0, 0 <= translate < 1 (a fraction of the image "
                "size), scale=[low,high] with 0 < low <= high. Example: augment=affine "
                "augment.degrees=10 augment.translate=0.1 augment.scale=[0.9,1.1]"
            )
        self.degrees, self.translate, self.scale = float(degrees), float(translate), scale

    @property
    def identity(self) -> bool:
        return self.degrees == 0 and self.translate == 0 and self.scale == (1.0, 1.0)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.identity:
            return x
        n = x.shape[0]
        u = torch.rand(n, 4, device=x.device, generator=generator) * 2 - 1  # in [-1, 1)
        angle = u[:, 0] * math.radians(self.degrees)
        low, high = self.scale
        zoom = low + (u[:, 1] + 1) / 2 * (high - low)
        # affine_grid maps output to input coordinates in [-1, 1]: the inverse transform, so
        # a zoom of s divides, and a shift of t x size is 2t in these units.
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        shift = u[:, 2:] * 2 * self.translate
        theta = torch.stack(
            [
                torch.stack([cos, -sin, shift[:, 0]], dim=1),
                torch.stack([sin, cos, shift[:, 1]], dim=1),
            ],
            dim=1,
        ).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def extra_repr(self) -> str:
        return f"degrees={self.degrees}, translate={self.translate}, scale={list(self.scale)}"
