"""Adversarial training (GANs): one model holding `.generator` and `.discriminator`, two optimizers.

Each batch is two Steps: the discriminator learns real vs fake, then the generator learns to
fool the just-updated discriminator (non-saturating loss). Images are [-1, 1] for both networks:
real batches are mapped from their normalised scale, the generator ends in tanh.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlrun.data.bundle import Batch, DataBundle
from dlrun.picture import Picture
from dlrun.tasks.base import Step, Task
from dlrun.tasks.images import PixelScale, require_images
from dlrun.tasks.metrics import frechet_distance, pool_for_fd

SAMPLES, PER_ROW = 64, 8  # the fixed-noise grid: samples/epoch_NNN.png and samples.png
SAMPLE_SEED, EVAL_SEED = 0, 1  # fixed noise for the grids; for the fakes of val/test metrics


class GANLoss(nn.Module):
    """Non-saturating BCE-with-logits GAN loss, with optional one-sided label smoothing.

    The discriminator's target for real images is 1 - label_smoothing (fakes stay 0); the
    generator maximises log D(G(z)) rather than minimising log(1 - D(G(z))).
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if not 0 <= label_smoothing < 1:
            raise ValueError(
                f"label_smoothing={label_smoothing} is invalid: use a value in [0, 1), e.g. 0.1"
            )
        self.real_target = 1.0 - label_smoothing

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        real = F.binary_cross_entropy_with_logits(
            real_logits, torch.full_like(real_logits, self.real_target)
        )
        fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        return real + fake

    def generator_loss(self, fake_logits: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Record a forward pass without gradients for `module`'s parameters (they keep their .grad)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


class AdversarialTask(Task):
    name = "adversarial"
    default_loss = "gan"
    allowed_losses = ("GANLoss",)
    default_monitor = "pixel_fd"
    metric_names = ("pixel_fd", "generator_loss", "discriminator_loss", "d_accuracy")
    samples_from_noise = True  # mode=predict draws samples; the discriminator is a training aid
    metric_modes = {
        "pixel_fd": "min",
        "generator_loss": "min",
        "discriminator_loss": "min",
        "d_accuracy": "max",
    }
    needs_images = True

    def __init__(self, model: nn.Module, loss_fn: nn.Module, data: DataBundle) -> None:
        super().__init__(model, loss_fn, data)
        self.generator, self.discriminator = model.generator, model.discriminator
        self.latent_dim: int = model.latent_dim
        self.device = next(model.parameters()).device
        self.scale = PixelScale(require_images(self.name, data), self.device)
        self.fixed_noise = self._noise(SAMPLES, torch.Generator().manual_seed(SAMPLE_SEED))

    @classmethod
    def check_data(cls, data: DataBundle) -> None:
        require_images(cls.name, data)

    def param_groups(self) -> dict[str, Iterable[nn.Parameter]]:
        return {
            "generator": self.generator.parameters(),
            "discriminator": self.discriminator.parameters(),
        }

    def exported_module(self, model: nn.Module) -> tuple[nn.Module, str]:
        return model.generator, "noise"

    def compiled_modules(self) -> list[nn.Module]:
        # the GAN module's own forward is never called in training: compile what is
        return [self.generator, self.discriminator]

    def _noise(self, n: int, gen: torch.Generator | None = None) -> Tensor:
        """(n, latent_dim) standard normal, drawn on the CPU generator `gen` (or torch's global)."""
        if gen is None:
            return torch.randn(n, self.latent_dim, device=self.device)
        return torch.randn(n, self.latent_dim, generator=gen).to(self.device)

    def _real(self, batch: Batch) -> Tensor:
        return self.scale.to_pixels(batch["x"]) * 2 - 1  # normalised -> [-1, 1]

    def _logits(self, images: Tensor) -> Tensor:
        return self.discriminator(images).reshape(len(images))

    def train_step(self, batch: Batch) -> Iterator[Step]:
        real = self._real(batch)
        fake = self.generator(self._noise(len(real)))
        real_logits, fake_logits = self._logits(real), self._logits(fake.detach())
        d_loss = self.loss_fn.discriminator_loss(real_logits, fake_logits)
        yield Step(
            "discriminator",
            d_loss,
            {
                "d_real": torch.sigmoid(real_logits).mean().detach(),
                "d_fake": torch.sigmoid(fake_logits).mean().detach(),
            },
        )
        # The loop has now stepped the discriminator; the generator is judged by the updated one.
        # D's parameters are frozen for this pass so the generator's loss leaves no D gradients.
        with frozen(self.discriminator):
            g_logits = self._logits(fake)
        yield Step("generator", self.loss_fn.generator_loss(g_logits))

    def evaluate(self, batches: Iterable[Batch]) -> dict[str, Any]:
        """D on the real split and on as many fresh fakes (fixed noise seed); pixel-space FD."""
        gen = torch.Generator().manual_seed(EVAL_SEED)
        real_logits, fake_logits, real_px, fake_px = [], [], [], []
        for batch in batches:
            real = self._real(batch)
            fake = self.generator(self._noise(len(real), gen))
            real_logits.append(self._logits(real).float())
            fake_logits.append(self._logits(fake).float())
            real_px.append(pool_for_fd((real.float() + 1) / 2))
            fake_px.append(pool_for_fd((fake.float() + 1) / 2))
        rl, fl = torch.cat(real_logits), torch.cat(fake_logits)
        return {
            "pixel_fd": frechet_distance(torch.cat(real_px), torch.cat(fake_px)),
            "d_accuracy": float(((rl > 0).sum() + (fl < 0).sum()) / (len(rl) + len(fl))),
            "d_real": float(torch.sigmoid(rl).mean()),
            "d_fake": float(torch.sigmoid(fl).mean()),
            "discriminator_loss": float(self.loss_fn.discriminator_loss(rl, fl)),
            "generator_loss": float(self.loss_fn.generator_loss(fl)),
        }

    def _samples(self) -> Picture:
        """The fixed-noise samples in [0, 1]: the same noise every epoch, so pictures compare."""
        return Picture((self.generator(self.fixed_noise).float() + 1) / 2, PER_ROW)

    def epoch_pictures(self) -> dict[str, Picture]:
        return {"samples": self._samples()}  # samples/epoch_NNN.png, TensorBoard's images

    def final_pictures(self, test_batches: Iterable[Batch]) -> dict[str, Picture]:
        return {"samples": self._samples()}  # samples.png, from the best generator
