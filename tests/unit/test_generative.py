"""Generative pieces in-process: models, losses, the pixel-space FD, image grids, the digits image
view, per-network optimizers and the refusals of data/losses a generative task cannot use."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from dlrun import build
from dlrun.artifacts import write_image_grid
from dlrun.data.tabular import digits
from dlrun.errors import ConfigError
from dlrun.models.generative import DCGAN, GAN, Autoencoder, ConvAutoencoder
from dlrun.tasks.adversarial import GANLoss, frozen
from dlrun.tasks.metrics import frechet_distance, pool_for_fd

CPU = torch.device("cpu")


def _task(compose, *overrides):
    cfg = compose(*overrides)
    data = build.build_data(cfg.data, 0, task_needs_images=build.model_needs_images(cfg.model))
    return cfg, build.build_task(cfg, data, CPU)


def test_frechet_distance_matches_scipy():
    from scipy import linalg

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(400, 6, generator=gen, dtype=torch.float64)
    b = torch.randn(400, 6, generator=gen, dtype=torch.float64) @ torch.rand(
        6, 6, generator=gen, dtype=torch.float64
    )
    b = b + 0.5
    ca, cb = np.cov(a.numpy(), rowvar=False), np.cov(b.numpy(), rowvar=False)
    root = linalg.sqrtm(ca @ cb).real
    mean_term = ((a.mean(0) - b.mean(0)) ** 2).sum().item()
    expected = mean_term + np.trace(ca) + np.trace(cb) - 2 * np.trace(root)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert abs(frechet_distance(a, a)) < 1e-8


@pytest.mark.parametrize("shape,dims", [((1, 8, 8), 64), ((1, 28, 28), 196), ((3, 32, 32), 768)])
def test_fd_pools_large_images_to_at_most_16_pixels_a_side(shape, dims):
    assert pool_for_fd(torch.rand(5, *shape)).shape == (5, dims)


def test_gan_loss_is_non_saturating_with_one_sided_smoothing():
    logit = lambda p: torch.tensor([math.log(p / (1 - p))])  # noqa: E731
    loss = GANLoss(label_smoothing=0.1)
    # Real target 0.9: at D(real) = 0.9 the real term is the entropy of 0.9; fakes (D = 0.2)
    # keep target 0.
    d = loss.discriminator_loss(logit(0.9), logit(0.2)).item()
    assert d == pytest.approx(-(0.9 * math.log(0.9) + 0.1 * math.log(0.1)) - math.log(0.8))
    assert loss.generator_loss(logit(0.2)).item() == pytest.approx(-math.log(0.2))  # -log D(G(z))
    with pytest.raises(ValueError, match="^label_smoothing=1.0 is invalid"):
        GANLoss(label_smoothing=1.0)  # build names the key: loss.label_smoothing (test_build)


def test_frozen_discriminator_gets_no_gradient_from_the_generator_loss():
    gan = GAN((1, 8, 8), latent_dim=4, hidden=[8])
    fake = gan.generator(torch.randn(3, 4))
    with frozen(gan.discriminator):
        out = gan.discriminator(fake)
    assert all(p.requires_grad for p in gan.discriminator.parameters())  # restored
    out.sum().backward()
    assert all(p.grad is None for p in gan.discriminator.parameters())
    assert all(p.grad is not None for p in gan.generator.parameters())


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_generative_models_keep_the_image_shape(shape):
    x = torch.randn(4, *shape)
    for model in (Autoencoder(shape), ConvAutoencoder(shape)):
        assert model(x).shape == x.shape
    for gan in (GAN(shape, latent_dim=8), DCGAN(shape, latent_dim=8, features=8)):
        fake = gan.generator(torch.randn(4, 8))
        assert fake.shape == x.shape and fake.abs().max() <= 1  # tanh
        assert gan.discriminator(fake).shape == (4, 1)
        assert {n.split(".")[0] for n in gan.state_dict()} == {"generator", "discriminator"}


def test_conv_models_refuse_sizes_they_cannot_halve(compose):
    cfg = compose("model=conv_autoencoder", "model.channels=[8,8,8,8]")
    data = build.build_data(cfg.data, 0, task_needs_images=True)
    with pytest.raises(ConfigError, match="8x8 size must be divisible by 16"):
        build.build_task(cfg, data, CPU)


def test_image_grid_png_has_the_expected_size_and_pixels(tmp_path):
    images = torch.zeros(10, 1, 8, 8)
    images[3] = 1.0  # the fourth tile is white
    write_image_grid(tmp_path / "g.png", images, per_row=4)
    png = np.asarray(Image.open(tmp_path / "g.png"))
    # 8 px tiles are enlarged 4x to 32 px, 2 px gaps: 4 columns x 3 rows.
    assert png.shape == (3 * 34 + 2, 4 * 34 + 2)
    tile = lambda i: png[2 + (i // 4) * 34 :][:32, 2 + (i % 4) * 34 :][:, :32]  # noqa: E731
    assert (tile(3) == 255).all() and (tile(0) == 0).all()
    write_image_grid(tmp_path / "rgb.png", torch.rand(2, 3, 32, 32), per_row=2)
    assert Image.open(tmp_path / "rgb.png").mode == "RGB"


def test_digits_image_view_is_the_pixels_scaled_to_0_1():
    from dlrun.data.bundled import load_digits
    from dlrun.data.split import holdout

    bundle = digits(0.2, 0, 0.1, seed=0, task_needs_images=True)
    assert bundle.input_shape == (1, 8, 8) and bundle.num_classes == 10
    assert bundle.model_facts()["in_channels"] == 1 and bundle.model_facts()["image_size"] == 8
    norm = bundle.images
    mean, std = torch.tensor(norm.mean).view(1, -1, 1, 1), torch.tensor(norm.std)
    train_x = bundle.train.tensors["x"]
    assert train_x.mean().abs() < 1e-5 and (train_x.std() - 1).abs() < 1e-3  # normalised
    pixels = bundle.test.tensors["x"] * std.view(1, -1, 1, 1) + mean
    x, y = load_digits()
    x_test = x[holdout(len(x), 0.2, 0, torch.as_tensor(y))[1].numpy()]
    expected = torch.tensor(x_test / 16, dtype=torch.float32).view(-1, 1, 8, 8)
    assert torch.allclose(pixels, expected, atol=1e-5)


def test_digits_stay_a_feature_table_for_classifiers():
    table = digits(0.2, 0, 0.1, seed=0)
    assert table.input_shape == (64,) and table.images is None
    # a table tells models its width, never image facts
    assert {"in_channels", "image_size"}.isdisjoint(table.model_facts())
    assert table.model_facts()["in_features"] == 64
    forced = digits(0.2, 0, 0.1, seed=0, as_images=True)
    assert forced.input_shape == (1, 8, 8)
    assert digits(0.2, 0, 0.1, seed=0, as_images=False, task_needs_images=True).input_shape == (64,)


def test_gan_gets_dcgan_adam_for_both_networks_by_default(compose):
    cfg, task = _task(compose, "model=gan")
    opts = build.build_optimizers(cfg, task)
    assert set(opts) == {"generator", "discriminator"}
    for opt in opts.values():
        assert isinstance(opt, torch.optim.Adam)
        assert opt.defaults["lr"] == 2e-4 and tuple(opt.defaults["betas"]) == (0.5, 0.999)
    gen_params = {id(p) for g in opts["generator"].param_groups for p in g["params"]}
    dis_params = {id(p) for g in opts["discriminator"].param_groups for p in g["params"]}
    assert gen_params == {id(p) for p in task.model.generator.parameters()}
    assert dis_params == {id(p) for p in task.model.discriminator.parameters()}
    assert not gen_params & dis_params


@pytest.mark.parametrize(
    "overrides,generator_lr,discriminator_lr,kind",
    [
        (["optimizers.generator.lr=1e-4"], 1e-4, 2e-4, torch.optim.Adam),
        (["optimizer.lr=1e-3"], 1e-3, 1e-3, torch.optim.Adam),
        (["optimizer=sgd", "optimizers.discriminator.lr=0.05"], 0.01, 0.05, torch.optim.SGD),
    ],
)
def test_per_network_optimizer_settings(compose, overrides, generator_lr, discriminator_lr, kind):
    cfg, task = _task(compose, "model=dcgan", *overrides)
    opts = build.build_optimizers(cfg, task)
    assert isinstance(opts["generator"], kind) and isinstance(opts["discriminator"], kind)
    assert opts["generator"].defaults["lr"] == generator_lr
    assert opts["discriminator"].defaults["lr"] == discriminator_lr


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["model=autoencoder", "data=classification"], "needs image data"),
        (["model=gan", "data.as_images=false"], "feature table of shape (64,)"),
        (["model=autoencoder", "loss=cross_entropy"], "cannot train a reconstruction task"),
        (["model=gan", "loss=mse"], "MSELoss cannot train an adversarial task: use loss=gan"),
    ],
)
def test_generative_tasks_refuse_what_they_cannot_use(compose, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _task(compose, *overrides)


def test_generative_tasks_choose_their_losses(compose):
    _, ae = _task(compose, "model=autoencoder")
    _, gan = _task(compose, "model=gan")
    assert isinstance(ae.loss_fn, torch.nn.MSELoss) and isinstance(gan.loss_fn, GANLoss)
    _, smoothed = _task(compose, "model=gan", "loss=gan", "loss.label_smoothing=0.1")
    assert smoothed.loss_fn.real_target == pytest.approx(0.9)


def test_gan_offers_its_fixed_noise_samples_to_image_loggers(compose):
    import torch

    from dlrun import build

    cfg = compose("model=gan")
    data = build.build_data(cfg.data, seed=0, task_needs_images=True)
    task = build.build_task(cfg, data, torch.device("cpu"))
    with torch.no_grad():
        first, again = (task.epoch_pictures()["samples"].images for _ in range(2))
    assert first.shape[1:] == (1, 8, 8) and first.min() >= 0 and first.max() <= 1
    assert torch.equal(first, again)  # the same noise every epoch: the pictures are comparable
