"""The pixel scale of image data, shared by the generative tasks.

Image batches hold normalised floats; the data records how it normalised them in
DataBundle.images (ImageFacts: one mean and std per channel), so
pixels in [0, 1] = x * std + mean. Metrics and pictures use that pixel scale.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dlrun.data.bundle import DataBundle, ImageFacts
from dlrun.errors import ConfigError


def require_images(task: str, data: DataBundle) -> ImageFacts:
    """The data's image facts; feature tables are refused: generative tasks need (C, H, W)
    images whose normalisation the data records (DataBundle.images)."""
    if data.images is not None:
        return data.images
    if data.holds_images:  # a plugin's images whose normalisation its builder did not record
        raise ConfigError(
            f"a {task} model maps its outputs back to pixels, but {data.source} gives images "
            "without their normalisation: return DataBundle(images=ImageFacts(mean, std)) "
            "from the dataset builder"
        )
    raise ConfigError(
        f"a {task} model needs image data "
        "(data=digits, mnist, fashion_mnist, cifar10), but this "
        f"data is a feature table of shape {tuple(data.input_shape)}: pick image data "
        "(for digits, leave data.as_images unset or set it to true)"
    )


class PixelScale:
    """Maps a split's normalised tensors to [0, 1] pixels and back, per channel."""

    def __init__(self, images: ImageFacts, device: torch.device) -> None:
        self.mean = torch.tensor(images.mean, device=device).view(-1, 1, 1)
        self.std = torch.tensor(images.std, device=device).view(-1, 1, 1)

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
