"""The pixel scale of image data, shared by the generative tasks.

Image batches hold normalised floats; the data records how it normalised them in
facts["normalization"] = {"mean": [...], "std": [...]} (one value per channel), so
pixels in [0, 1] = x * std + mean. Metrics and pictures use that pixel scale.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dlrun.data.bundle import DataBundle
from dlrun.errors import ConfigError


def require_images(task: str, data: DataBundle) -> None:
    """Refuse feature tables: generative tasks need (C, H, W) images with a normalization fact."""
    if len(data.input_shape) != 3 or "normalization" not in data.facts:
        raise ConfigError(
            f"a {task} model needs image data "
            "(data=digits, mnist, fashion_mnist, cifar10), but this "
            f"data is a feature table of shape {tuple(data.input_shape)}: pick image data "
            "(for digits, leave data.as_images unset or set it to true)"
        )


class PixelScale:
    """Maps a split's normalised tensors to [0, 1] pixels and back, per channel."""

    def __init__(self, normalization: dict[str, list[float]], device: torch.device) -> None:
        self.mean = torch.tensor(normalization["mean"], device=device).view(-1, 1, 1)
        self.std = torch.tensor(normalization["std"], device=device).view(-1, 1, 1)

    def to_pixels(self, x: Tensor) -> Tensor:  # (B, C, H, W) normalised -> [0, 1]
        return x * self.std + self.mean

    def from_pixels(self, pixels: Tensor) -> Tensor:  # [0, 1] -> normalised
        return (pixels - self.mean) / self.std


def pair_rows(top: Tensor, bottom: Tensor, per_row: int) -> Tensor:
    """Interleave two image sets row by row: per_row of `top`, then the same per_row of `bottom`."""
    rows = []
    for start in range(0, len(top), per_row):
        rows += [top[start : start + per_row], bottom[start : start + per_row]]
    return torch.cat(rows)
