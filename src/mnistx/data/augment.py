"""Data augmentation applied to whole batches as tensor ops, on whatever device the batch is on.

Per-sample PIL transforms cost more than a small CNN's whole step (see bench/); one
`affine_grid` + `grid_sample` call moves, turns, scales and (optionally) elastically distorts
every image of a batch at once, on the GPU when training there, so the dataset never leaves
the device.
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

    `elastic_alpha` > 0 adds Simard et al.'s (2003) elastic distortion to the same warp: a
    random displacement field, smoothed by a Gaussian of `elastic_sigma` pixels and scaled by
    `elastic_alpha` pixels (their MNIST setting: 34 and 4), so strokes bend the way
    handwriting varies; it costs one small blur, not a second resampling.
    """

    _blur: torch.Tensor  # a buffer (register_buffer), named here for the type checker

    def __init__(
        self,
        degrees: float = 0.0,
        translate: float = 0.0,
        scale: Sequence[float] = (1.0, 1.0),
        elastic_alpha: float = 0.0,
        elastic_sigma: float = 4.0,
    ) -> None:
        super().__init__()
        scale = tuple(float(s) for s in scale)
        if (
            degrees < 0
            or not 0 <= translate < 1
            or len(scale) != 2
            or not 0 < scale[0] <= scale[1]
            or elastic_alpha < 0
            or elastic_sigma <= 0
        ):
            raise UserError(
                f"augment settings degrees={degrees}, translate={translate}, scale={list(scale)}, "
                f"elastic_alpha={elastic_alpha}, elastic_sigma={elastic_sigma} are out of range: "
                "degrees >= 0, 0 <= translate < 1 (a fraction of the image size), "
                "scale=[low,high] with 0 < low <= high, elastic_alpha >= 0 and elastic_sigma > 0 "
                "(pixels). Example: augment=affine augment.degrees=10 augment.translate=0.1 "
                "augment.scale=[0.9,1.1]"
            )
        self.degrees, self.translate, self.scale = float(degrees), float(translate), scale
        self.elastic_alpha, self.elastic_sigma = float(elastic_alpha), float(elastic_sigma)
        radius = math.ceil(3 * self.elastic_sigma)
        taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
        kernel = torch.exp(-(taps**2) / (2 * self.elastic_sigma**2))
        self.register_buffer("_blur", kernel / kernel.sum(), persistent=False)

    @property
    def identity(self) -> bool:
        return (
            self.degrees == 0
            and self.translate == 0
            and self.scale == (1.0, 1.0)
            and self.elastic_alpha == 0
        )

    def _displacement(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """A smooth random field (N, H, W, 2) in affine_grid's [-1, 1] units."""
        n, _, h, w = x.shape
        field = torch.rand(n, 2, h, w, device=x.device, generator=generator) * 2 - 1
        k = self._blur.to(device=x.device, dtype=x.dtype)
        r = len(k) // 2
        # Separable Gaussian blur of both components (zero padding: the field fades out at the
        # border, where MNIST has only background anyway).
        field = F.conv2d(field, k.view(1, 1, 1, -1).expand(2, 1, 1, -1), padding=(0, r), groups=2)
        field = F.conv2d(field, k.view(1, 1, -1, 1).expand(2, 1, -1, 1), padding=(r, 0), groups=2)
        # Pixels to affine_grid's units, per axis, with Python scalars: a small tensor built
        # here would be a host-to-device copy, and so a host sync, on every GPU step.
        field[:, 0].mul_(2 * self.elastic_alpha / w)
        field[:, 1].mul_(2 * self.elastic_alpha / h)
        return field.permute(0, 2, 3, 1)

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
        if self.elastic_alpha > 0:
            grid = grid + self._displacement(x, generator)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def extra_repr(self) -> str:
        return (
            f"degrees={self.degrees}, translate={self.translate}, scale={list(self.scale)}, "
            f"elastic_alpha={self.elastic_alpha}, elastic_sigma={self.elastic_sigma}"
        )
