"""Whole-batch image transforms that run on the batch's own device (GPU when the run is on one).

Images are kept as uint8 (B, C, H, W); each batch is cropped and flipped while still uint8 (four
times less memory traffic than float), then converted to float and normalised in one pass. There
is no per-sample PIL work. Random draws use torch's global generator of the batch's device, which
`seed` seeds and checkpoints save, so augmentation is repeatable under a seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from dlrun.data.bundle import Batch


def random_crop(x: Tensor, padding: int) -> Tensor:
    """Pad every image by `padding` zero pixels, then cut a random H x W window per image.

    The same as torchvision's RandomCrop(size, padding) applied to each image independently,
    done for the whole batch with one gather.
    """
    if padding <= 0:
        return x
    b, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))  # (B, C, H+2p, W+2p)
    dy = torch.randint(0, 2 * padding + 1, (b, 1), device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (b, 1), device=x.device)
    rows = (dy + torch.arange(h, device=x.device))[:, None, :, None]  # (B, 1, H, 1)
    cols = (dx + torch.arange(w, device=x.device))[:, None, None, :]  # (B, 1, 1, W)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chans = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]


def random_flip(x: Tensor) -> Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(len(x), device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


class ImageBatchTransform:
    """uint8 (B, C, H, W) in "x" -> float, normalised with per-channel mean/std (on a 0..1 scale),
    after an optional random crop with padding and horizontal flip (training batches only)."""

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        crop_padding: int = 0,
        flip: bool = False,
    ) -> None:
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]
        self.crop_padding, self.flip = int(crop_padding), bool(flip)
        self._affine: dict[torch.device, tuple[Tensor, Tensor]] = {}

    @property
    def augments(self) -> bool:
        return self.crop_padding > 0 or self.flip

    def _scale_shift(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """(x/255 - mean)/std == x * scale - shift; cached per device so no copy per batch."""
        if device not in self._affine:
            mean = torch.tensor(self.mean)[:, None, None]
            std = torch.tensor(self.std)[:, None, None]
            self._affine[device] = ((1.0 / (255.0 * std)).to(device), (mean / std).to(device))
        return self._affine[device]

    def normalize(self, x: Tensor) -> Tensor:
        scale, shift = self._scale_shift(x.device)
        return x.float().mul_(scale).sub_(shift)

    def __call__(self, batch: Batch) -> Batch:
        x = batch["x"]
        if self.crop_padding:
            x = random_crop(x, self.crop_padding)
        if self.flip:
            x = random_flip(x)
        return {**batch, "x": self.normalize(x)}

    def without_augmentation(self) -> ImageBatchTransform:
        """The same normalisation, no randomness: for validation and test batches."""
        return ImageBatchTransform(self.mean, self.std)
