"""Whole-batch image transforms that run on the batch's own device (GPU when the run is on one).

Images are kept as uint8 (B, C, H, W); each batch is cropped and flipped while still uint8 (four
times less memory traffic than float), then converted to float and normalised in one pass. There
is no per-sample PIL work. Random draws use torch's global generator of the batch's device, which
`seed` seeds and checkpoints save, so augmentation is repeatable under a seed.

Policies (`data.augment`): none; basic (random crop with padding, and a flip where the dataset
allows one); trivialaugment, randaugment and autoaugment (basic, then torchvision.transforms.v2's
policy on the uint8 batch). A v2 policy draws one operation per call, so the batch is cut into
POLICY_DRAWS groups that each draw their own: per-image calls cost more than a small model's
step on a CPU, and a fixed number of calls keeps a large GPU batch's cost flat. Mixing
(`data.mixup`, `data.cutmix` alphas) runs last, on the normalised batch, and turns "y" into soft
targets (B, classes) that the loss takes as class probabilities.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal

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


# data.augment: the type a builder's parameter takes (a wrong value is refused in one line)
Policy = Literal["none", "basic", "trivialaugment", "randaugment", "autoaugment"]
POLICIES: tuple[str, ...] = typing.get_args(Policy)
POLICY_DRAWS = 8  # operations a v2 policy draws per batch (one per group of images)


def _v2_policy(name: str) -> Callable[[Tensor], Tensor]:
    from torchvision.transforms import v2

    return {
        "trivialaugment": v2.TrivialAugmentWide,
        "randaugment": v2.RandAugment,
        "autoaugment": v2.AutoAugment,
    }[name]()


def check_policy(augment: str, mixup: float = 0.0, cutmix: float = 0.0) -> None:
    """A builder's check of data.augment, data.mixup and data.cutmix (plain ValueErrors)."""
    if augment not in POLICIES:
        raise ValueError(f"augment={augment!r} is invalid: use one of {', '.join(POLICIES)}")
    for name, alpha in (("mixup", mixup), ("cutmix", cutmix)):
        if not isinstance(alpha, int | float) or isinstance(alpha, bool) or alpha < 0:
            raise ValueError(f"{name}={alpha!r} is invalid: use an alpha >= 0 (0 = off)")


class BatchMixer:
    """MixUp and/or CutMix (torchvision.transforms.v2) on a normalised batch; with both, each
    batch uses one of them at random (timm's and torchvision's reference scripts do the same)."""

    def __init__(self, num_classes: int, mixup: float, cutmix: float) -> None:
        self.num_classes, self.mixup, self.cutmix = num_classes, float(mixup), float(cutmix)
        self._ops: list[Any] | None = None

    def _made(self) -> list[Any]:
        if self._ops is None:  # torchvision is imported when the first batch is mixed
            from torchvision.transforms import v2

            self._ops = []
            if self.mixup > 0:
                self._ops.append(v2.MixUp(alpha=self.mixup, num_classes=self.num_classes))
            if self.cutmix > 0:
                self._ops.append(v2.CutMix(alpha=self.cutmix, num_classes=self.num_classes))
        return self._ops

    def __call__(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        ops = self._made()
        pick = int(torch.randint(len(ops), (1,))) if len(ops) > 1 else 0
        return ops[pick](x, y)


class ImageBatchTransform:
    """uint8 (B, C, H, W) in "x" -> float, normalised with per-channel mean/std (on a 0..1 scale),
    after an optional random crop with padding, horizontal flip and v2 policy, then optional
    MixUp/CutMix (training batches only)."""

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        crop_padding: int = 0,
        flip: bool = False,
        policy: str = "none",
        mixer: BatchMixer | None = None,
    ) -> None:
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]
        self.crop_padding, self.flip = int(crop_padding), bool(flip)
        self.policy, self.mixer = policy, mixer
        self._policy_op = _v2_policy(policy) if policy not in ("none", "basic") else None
        self._affine: dict[torch.device, tuple[Tensor, Tensor]] = {}

    @property
    def augments(self) -> bool:
        return bool(self.crop_padding > 0 or self.flip or self._policy_op or self.mixer)

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

    def _apply_policy(self, x: Tensor) -> Tensor:
        assert self._policy_op is not None
        group = -(-len(x) // POLICY_DRAWS)  # ceil: at most POLICY_DRAWS groups
        return torch.cat([self._policy_op(part) for part in x.split(group)])

    def __call__(self, batch: Batch) -> Batch:
        x = batch["x"]
        if self.crop_padding:
            x = random_crop(x, self.crop_padding)
        if self.flip:
            x = random_flip(x)
        if self._policy_op is not None:
            x = self._apply_policy(x)
        x = self.normalize(x)
        if self.mixer is None or "y" not in batch:
            return {**batch, "x": x}
        x, y = self.mixer(x, batch["y"])
        return {**batch, "x": x, "y": y}

    def without_augmentation(self) -> ImageBatchTransform:
        """The same normalisation, no randomness: for validation and test batches."""
        return ImageBatchTransform(self.mean, self.std)
