"""Generative models: autoencoders (task "reconstruction") and GANs (task "adversarial").

Shapes come from the data (`input_shape` = (C, H, W)). Autoencoders output one raw value per
pixel (the task reads it as a pixel or a logit). A GAN is one module holding `.generator`
(noise (B, latent_dim) -> images in [-1, 1]) and `.discriminator` (images -> (B, 1) logits),
so checkpoints hold both networks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from dlrun.models.mlp import activation as make_activation


def _mlp(
    widths: Sequence[int], act: str | None, final: nn.Module | None = None, norm: bool = False
) -> nn.Sequential:
    """Linear layers through `widths`, `act` (None: LeakyReLU 0.2) and optional batch norm between
    them, `final` after the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers += [nn.BatchNorm1d(b)] if norm else []
            layers.append(nn.LeakyReLU(0.2) if act is None else make_activation(act))
    if final is not None:
        layers.append(final)
    return nn.Sequential(*layers)


def _check_halvings(
    input_shape: Sequence[int], halvings: int, who: str, fix: str
) -> tuple[int, int]:
    """The feature-map size after `halvings` stride-2 layers; images must divide evenly."""
    _, h, w = input_shape
    step = 2**halvings
    if h % step or w % step:
        raise ValueError(
            f"{who} halves the image {halvings} times, so its {h}x{w} size must be divisible "
            f"by {step}: {fix}"
        )
    return h // step, w // step


class Autoencoder(nn.Module):
    """MLP encoder (flattened image -> latent_dim) and mirrored MLP decoder."""

    dlrun_task = "reconstruction"

    def __init__(
        self,
        input_shape: Sequence[int],
        latent_dim: int = 16,
        hidden: Sequence[int] = (256,),
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        n = math.prod(self.input_shape)
        self.encoder = _mlp([n, *hidden, latent_dim], activation)
        self.decoder = _mlp([latent_dim, *reversed(hidden), n], activation)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C, H, W)
        return self.decoder(self.encoder(x.flatten(1))).view(len(x), *self.input_shape)


class ConvAutoencoder(nn.Module):
    """Stride-2 conv encoder -> linear latent -> mirrored transposed-conv decoder."""

    dlrun_task = "reconstruction"

    def __init__(
        self, input_shape: Sequence[int], latent_dim: int = 32, channels: Sequence[int] = (32, 64)
    ) -> None:
        super().__init__()
        fix = "use fewer channels, or the MLP autoencoder for this data"
        h, w = _check_halvings(input_shape, len(channels), f"channels={list(channels)}", fix)
        widths = [input_shape[0], *channels]
        down: list[nn.Module] = []
        up: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            down += [nn.Conv2d(a, b, 4, 2, 1), nn.ReLU()]
            up = [nn.ConvTranspose2d(b, a, 4, 2, 1), *([nn.ReLU()] if i else []), *up]
        flat = widths[-1] * h * w
        self.encoder = nn.Sequential(*down, nn.Flatten(), nn.Linear(flat, latent_dim))
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, flat), nn.ReLU(), nn.Unflatten(1, (widths[-1], h, w)), *up
        )

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C, H, W)
        return self.decoder(self.encoder(x))


class GAN(nn.Module):
    """MLP generator (batch norm, LeakyReLU 0.2, tanh) and discriminator (LeakyReLU 0.2), for
    small grey images (digits, MNIST). Without the generator's batch norm, every noise vector gave
    the same image at initialisation and training collapsed to one sample on digits."""

    dlrun_task = "adversarial"

    def __init__(
        self, input_shape: Sequence[int], latent_dim: int = 64, hidden: Sequence[int] = (256, 512)
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        n = math.prod(input_shape)
        self.generator = nn.Sequential(
            _mlp([latent_dim, *hidden, n], None, nn.Tanh(), norm=True),
            nn.Unflatten(1, tuple(input_shape)),
        )
        self.discriminator = nn.Sequential(nn.Flatten(), _mlp([n, *reversed(hidden), 1], None))

    def forward(self, z: Tensor) -> Tensor:  # (B, latent_dim) -> (B, C, H, W) in [-1, 1]
        return self.generator(z)


class DCGAN(nn.Module):
    """Convolutional GAN (Radford et al. 2015, sized for 28x28 / 32x32): two stride-2 stages.

    Generator: linear -> (2f, H/4, W/4) -> transposed convs -> tanh; discriminator mirrors it with
    strided convs and LeakyReLU(0.2); batch norm in both (not on D's input layer); N(0, 0.02) init.
    """

    dlrun_task = "adversarial"

    def __init__(
        self, input_shape: Sequence[int], latent_dim: int = 64, features: int = 64
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        c, f = input_shape[0], features
        h, w = _check_halvings(input_shape, 2, "DCGAN", "use the MLP GAN for this data")
        self.generator = nn.Sequential(
            nn.Linear(latent_dim, 2 * f * h * w),
            nn.BatchNorm1d(2 * f * h * w),
            nn.ReLU(),
            nn.Unflatten(1, (2 * f, h, w)),
            nn.ConvTranspose2d(2 * f, f, 4, 2, 1),
            nn.BatchNorm2d(f),
            nn.ReLU(),
            nn.ConvTranspose2d(f, c, 4, 2, 1),
            nn.Tanh(),
        )
        self.discriminator = nn.Sequential(
            nn.Conv2d(c, f, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(f, 2 * f, 4, 2, 1),
            nn.BatchNorm2d(2 * f),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(2 * f * h * w, 1),
        )
        self.apply(_dcgan_init)

    def forward(self, z: Tensor) -> Tensor:  # (B, latent_dim) -> (B, C, H, W) in [-1, 1]
        return self.generator(z)


def _dcgan_init(module: nn.Module) -> None:
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
