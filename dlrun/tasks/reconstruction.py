"""Reconstruction (autoencoders): the model maps images to images; labels are ignored.

The model sees the normalised batch and outputs one value per pixel: the [0, 1] pixel itself
(loss=mse, the default) or its logit (loss=bce_with_logits, read through a sigmoid). Metrics
are on the [0, 1] pixel scale, with reconstructions clipped to that range.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from dlrun.data.bundle import Batch, DataBundle
from dlrun.picture import Picture
from dlrun.tasks.base import Step, Task
from dlrun.tasks.images import PixelScale, pair_rows, require_images

GRID_IMAGES, PER_ROW = 32, 8  # reconstructions.png: 4 pairs of rows (originals above outputs)


class ReconstructionTask(Task):
    name = "reconstruction"
    default_loss = "mse"
    allowed_losses = ("MSELoss", "BCEWithLogitsLoss")
    default_monitor = "mse"
    metric_names = ("mse", "psnr", "loss")
    metric_modes = {"mse": "min", "psnr": "max", "loss": "min"}
    needs_images = True

    def __init__(self, model: nn.Module, loss_fn: nn.Module, data: DataBundle) -> None:
        super().__init__(model, loss_fn, data)
        device = next(model.parameters()).device
        self.scale = PixelScale(require_images(self.name, data), device)
        self.logits = isinstance(loss_fn, nn.BCEWithLogitsLoss)

    @classmethod
    def check_data(cls, data: DataBundle) -> None:
        require_images(cls.name, data)

    def reconstruct(self, out: Tensor) -> Tensor:
        """Model output -> [0, 1] pixels."""
        return torch.sigmoid(out) if self.logits else out.clamp(0, 1)

    def train_step(self, batch: Batch) -> Iterator[Step]:
        target = self.scale.to_pixels(batch["x"])
        yield Step("model", self.loss_fn(self.model(batch["x"]), target))

    def evaluate(self, batches: Iterable[Batch]) -> dict[str, Any]:
        """Whole-split MSE over every pixel, PSNR from that MSE (peak 1), and the mean loss."""
        sq_err, loss_sum, pixels, samples = 0.0, 0.0, 0, 0
        for batch in batches:
            out = self.model(batch["x"]).float()
            target = self.scale.to_pixels(batch["x"])
            sq_err = sq_err + (self.reconstruct(out) - target).pow(2).sum()  # stays on device
            loss_sum = loss_sum + self.loss_fn(out, target) * len(out)
            pixels, samples = pixels + target.numel(), samples + len(out)
        mse = float(sq_err) / pixels
        return {
            "mse": mse,
            "psnr": 10 * math.log10(1 / max(mse, 1e-10)),
            "loss": float(loss_sum) / samples,
        }

    def final_pictures(self, test_batches: Iterable[Batch]) -> dict[str, Picture]:
        """reconstructions.png: rows of test images, each above the row of their reconstructions."""
        x = torch.cat([b["x"] for b in _first(test_batches, GRID_IMAGES)])[:GRID_IMAGES]
        shown = pair_rows(self.scale.to_pixels(x), self.reconstruct(self.model(x)), PER_ROW)
        return {"reconstructions": Picture(shown, PER_ROW)}

    def answers(self, batch: Batch) -> dict[str, Tensor]:
        target = self.scale.to_pixels(batch["x"])
        images = self.reconstruct(self.model(batch["x"]).float())
        return {"images": images, "errors": (images - target).pow(2).flatten(1).mean(1)}

    def exported_module(self, model: nn.Module) -> tuple[nn.Module, str]:
        return Pixels(model, self.logits), "images"


def _first(batches: Iterable[Batch], n: int) -> Iterator[Batch]:
    """Batches until at least n samples have been seen."""
    seen = 0
    for batch in batches:
        if seen >= n:
            return
        yield batch
        seen += len(batch["x"])


class Pixels(nn.Module):
    """An autoencoder that returns [0, 1] pixels (the task's reading of the raw output)."""

    def __init__(self, model: nn.Module, logits: bool) -> None:
        super().__init__()
        self.model, self.logits = model, logits

    def forward(self, x: Tensor) -> Tensor:
        out = self.model(x)
        return torch.sigmoid(out) if self.logits else out.clamp(0, 1)
