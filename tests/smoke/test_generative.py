"""Autoencoders and GANs through the real `dlrun` command: they train in the one loop, write real
pictures, beat a trivial baseline, and their checkpoints hold both GAN networks and optimizers."""

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import read_metrics, run_dirs, run_dlrun
from tests.datasets import write_mnist


def digits_data(tmp_path: Path) -> tuple[list[str], int]:
    """(overrides, image side in pixels) for sklearn's digits, served as 1x8x8 images."""
    return ["data=digits"], 8


def mnist_data(tmp_path: Path) -> tuple[list[str], int]:
    """Tiny files in MNIST's real idx format, through torchvision's MNIST class."""
    write_mnist(tmp_path / "data", n_train=64, n_test=32)
    return ["data=mnist", f"data.root={tmp_path / 'data'}", "data.download=false"], 28


# Each entry writes its data under tmp_path if it needs files and returns (overrides, image side).
IMAGE_DATA = [pytest.param(digits_data, id="digits"), pytest.param(mnist_data, id="mnist")]

MODELS = [
    pytest.param("autoencoder", id="autoencoder"),
    pytest.param("gan", id="gan"),
    pytest.param("conv_autoencoder", id="conv_autoencoder", marks=pytest.mark.slow),
    pytest.param("dcgan", id="dcgan", marks=pytest.mark.slow),
]
RECONSTRUCTION = {"autoencoder", "conv_autoencoder"}


def tiles(path: Path, side: int, per_row: int = 8) -> list[np.ndarray]:
    """Open a grid PNG, check its size, and cut it into its tiles (see write_image_grid)."""
    png = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    tile = side * max(1, -(-32 // side))  # small images are enlarged to >= 32 px
    rows = (png.shape[0] - 2) // (tile + 2)
    assert png.shape == (rows * (tile + 2) + 2, per_row * (tile + 2) + 2), png.shape
    return [
        png[2 + r * (tile + 2) :][:tile, 2 + c * (tile + 2) :][:, :tile]
        for r in range(rows)
        for c in range(per_row)
    ]


def assert_real_picture(path: Path, side: int, count: int) -> None:
    """A grid of `count` tiles that are not blank and not all the same image."""
    cut = tiles(path, side)
    assert len(cut) == count
    assert all(t.std() > 0 for t in cut), f"{path} has a constant tile"
    assert len({t.tobytes() for t in cut}) > count // 2, f"{path} repeats one image"


@pytest.mark.parametrize("data", IMAGE_DATA)
@pytest.mark.parametrize("model", MODELS)
def test_generative_model_trains_and_writes_pictures(dlrun, tmp_path, model, data):
    overrides, side = data(tmp_path)
    dlrun(f"model={model}", *overrides, "debug=smoke")
    (run,) = run_dirs(tmp_path)
    m = read_metrics(run)
    assert m["status"] == "completed"
    if model in RECONSTRUCTION:
        assert m["task"] == "reconstruction" and m["monitor"] == {"metric": "mse", "mode": "min"}
        assert m["test"]["psnr"] == pytest.approx(10 * math.log10(1 / m["test"]["mse"]))
        assert_real_picture(run / "reconstructions.png", side, 64)  # 32 images, 32 outputs
    else:
        assert m["task"] == "adversarial" and m["monitor"]["metric"] == "pixel_fd"
        assert set(m["test"]) >= {"d_accuracy", "d_real", "d_fake", "pixel_fd"}
        assert_real_picture(run / "samples.png", side, 64)
        assert_real_picture(run / "samples" / "epoch_001.png", side, 64)


def test_autoencoder_beats_the_mean_image_on_digits(dlrun, tmp_path):
    from dlrun.data.bundled import load_digits
    from dlrun.data.split import holdout

    dlrun("model=autoencoder", "trainer.epochs=5", "trainer.progress=false")
    mse = read_metrics(run_dirs(tmp_path)[0])["test"]["mse"]
    x, y = load_digits()  # the same test split as data=digits (test_fraction 0.2, split_seed 0)
    x_test = x[holdout(len(x), 0.2, 0, torch.as_tensor(y))[1].numpy()]
    pixels = x_test / 16
    mean_image_mse = ((pixels - pixels.mean(0)) ** 2).mean()  # the best constant image
    assert mse / mean_image_mse < 0.4, (mse, mean_image_mse)  # measured 0.22 after 5 epochs


GAN_EPOCHS = 6


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory) -> Path:
    """One MLP GAN trained on digits for a few epochs, shared by the tests below."""
    root = tmp_path_factory.mktemp("gan")
    proc = run_dlrun(
        "model=gan", f"trainer.epochs={GAN_EPOCHS}", "trainer.progress=false", cwd=root
    )
    assert proc.returncode == 0, proc.stderr
    (run,) = run_dirs(root)
    return run


def _history(run: Path) -> list[dict[str, float]]:
    with (run / "history.csv").open() as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def test_gan_losses_and_discriminator_outputs_move_as_expected(gan_run):
    rows = _history(gan_run)
    assert len(rows) == GAN_EPOCHS
    for row in rows:
        # D tells real from fake (D(real) > D(fake)) without winning outright, and the
        # generator's non-saturating loss stays in the band of a balanced game (log 2 = 0.69).
        assert row["train_d_real"] > row["train_d_fake"]
        assert 0.05 < row["train_d_fake"] < row["train_d_real"] < 0.95
        assert 0.3 < row["train_generator_loss"] < 3 and 0.3 < row["train_discriminator_loss"] < 2
    # From the first epoch the discriminator's fakes look less real to it, so the generator's
    # loss rises; meanwhile the samples move towards the data (pixel-space FD falls).
    first, last = rows[0], rows[-1]
    assert last["train_d_fake"] < first["train_d_fake"]
    assert last["train_generator_loss"] > first["train_generator_loss"]
    assert last["val_pixel_fd"] < 0.6 * first["val_pixel_fd"]
    assert sorted(p.name for p in (gan_run / "samples").iterdir()) == [
        f"epoch_{e:03d}.png" for e in range(1, GAN_EPOCHS + 1)
    ]


def test_gan_checkpoints_hold_both_networks_and_optimizers(gan_run, compose):
    from dlrun import build, checkpoint
    from dlrun.artifacts import write_image_grid
    from dlrun.tasks.adversarial import SAMPLES

    m = read_metrics(gan_run)
    cfg = compose("model=gan")
    data = build.build_data(cfg.data, cfg.seed, task_needs_images=True)
    task = build.build_task(cfg, data, torch.device("cpu"))
    optimizers = build.build_optimizers(cfg, task)
    batches = math.ceil(len(data.train) / cfg.trainer.batch_size) * GAN_EPOCHS
    for name in ("best", "last"):
        ckpt = checkpoint.load(gan_run / m["checkpoints"][name])
        assert {k.split(".")[0] for k in ckpt["model"]} == {"generator", "discriminator"}
        assert set(ckpt["optimizers"]) == {"generator", "discriminator"}
        task.model.load_state_dict(ckpt["model"])  # strict: every key of both networks
        for group, opt in optimizers.items():
            opt.load_state_dict(ckpt["optimizers"][group])
            steps = {float(s["step"]) for s in opt.state.values()}
            expected = batches * (ckpt["loop"]["epoch"] / GAN_EPOCHS)
            assert steps == {expected}, (name, group)  # one step per batch for each network
    # samples.png was drawn by the best generator from the fixed noise: redraw it from best.pt.
    task.model.load_state_dict(checkpoint.load(gan_run / m["checkpoints"]["best"])["model"])
    task.model.eval()
    with torch.no_grad():
        redrawn = (task.generator(task.fixed_noise) + 1) / 2
    write_image_grid(gan_run.parent / "redrawn.png", redrawn, per_row=8)
    assert len(redrawn) == SAMPLES
    saved = np.asarray(Image.open(gan_run / "samples.png"), dtype=np.int16)
    again = np.asarray(Image.open(gan_run.parent / "redrawn.png"), dtype=np.int16)
    assert np.abs(saved - again).max() <= 1


@pytest.mark.slow
def test_gan_resumes_and_evaluates_to_the_same_result(gan_run, tmp_path, dlrun):
    """Stopping after half the epochs and resuming reproduces the uninterrupted run exactly; an
    eval-only run of its checkpoint reproduces its test metrics."""
    dlrun("model=gan", f"trainer.epochs={GAN_EPOCHS // 2}", "trainer.progress=false")
    (half,) = run_dirs(tmp_path)
    dlrun("model=gan", f"trainer.epochs={GAN_EPOCHS}", "trainer.progress=false", f"resume={half}")
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(_history(half)) == drop(_history(gan_run))
    assert read_metrics(half)["test"] == read_metrics(gan_run)["test"]
    # mode=eval rebuilds the GAN from the checkpoint's own config (not the default MLP's keys).
    dlrun("mode=eval", f"ckpt={gan_run}")
    (evaluated,) = [m for m in map(read_metrics, run_dirs(tmp_path)) if m.get("mode") == "eval"]
    assert evaluated["task"] == "adversarial" and evaluated["test"] == read_metrics(gan_run)["test"]
