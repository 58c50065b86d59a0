"""image_folder: channels (greyscale folders stay one channel), the in-memory path (decoded once,
the same batches as streaming from disk) and the rule for data.num_workers=auto."""

import numpy as np
import pytest
import torch

from dlrun.data import folder, vision
from dlrun.data.bundle import InMemorySplit
from dlrun.data.folder import FolderSplit
from dlrun.data.folder_load import MAX_AUTO_WORKERS, auto_workers
from tests.datasets import class_images, write_image_folder, write_mnist


def build(path, **kw):
    args = {"val_fraction": 0.2, "seed": 0, "image_size": 16, "num_workers": 0, "augment": "none"}
    return folder.image_folder(str(path), **{**args, **kw})


@pytest.mark.parametrize(
    ("grey", "channels", "expected"),
    [(True, "auto", 1), (False, "auto", 3), (True, 3, 3), (False, 1, 1)],
)
def test_channels_follow_the_pictures_or_the_setting(tmp_path, grey, channels, expected):
    write_image_folder(tmp_path / "pics", ["a", "b"], per_class=5, size=12, grey=grey)
    data = build(tmp_path / "pics", channels=channels)
    assert data.input_shape == (expected, 16, 16) and len(data.images.mean) == expected
    x = next(data.train.batches(4))["x"]
    assert x.shape == (4, expected, 16, 16)


def test_a_greyscale_folder_reads_as_the_idx_digits_it_was_written_from(tmp_path):
    """The same 28 px digits as MNIST idx files and as a folder of PNGs: the folder is served as
    1x28x28, pixel for pixel the idx images, so a model trained on either takes the other."""
    from PIL import Image

    images, labels = class_images(40, 10, (28, 28), seed=5)
    write_mnist(tmp_path, images={"train": images, "test": images[:8]},
                labels={"train": labels, "test": labels[:8]})  # fmt: skip
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        (tmp_path / "pics" / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(tmp_path / "pics" / str(label) / f"{i:03d}.png")
    pics = build(tmp_path / "pics", image_size=28, val_fraction=0.1, test_fraction=0.2)
    idx = vision.mnist(str(tmp_path), download=False, val_fraction=0.1, seed=0)
    assert pics.input_shape == idx.input_shape == (1, 28, 28)
    served = torch.cat([pics.train.tensors["x"], pics.val.tensors["x"], pics.test.tensors["x"]])
    as_rows = {bytes(r.numpy().tobytes()) for r in served}
    assert as_rows <= {bytes(img.tobytes()) for img in images}  # every pixel as in the idx file
    assert len(as_rows) == len(served)


def test_a_small_folder_is_decoded_once_and_serves_what_streaming_serves(tmp_path):
    write_image_folder(tmp_path / "pics", ["a", "b", "c"], per_class=6, size=12)
    memory = build(tmp_path / "pics")
    stream = build(tmp_path / "pics", memory_limit_mb=0)
    assert isinstance(memory.train, InMemorySplit) and isinstance(stream.train, FolderSplit)
    assert memory.images == stream.images and memory.loader_workers == 0
    order = torch.randperm(len(memory.train), generator=torch.Generator().manual_seed(1))
    for split in ("train", "val", "test"):
        a, b = getattr(memory, split), getattr(stream, split)
        use = order if split == "train" else None
        for x, y in zip(a.batches(5, use), b.batches(5, use), strict=True):
            assert torch.equal(x["x"], y["x"]) and torch.equal(x["y"], y["y"])
    stream.close()


def test_the_memory_limit_decides_by_the_decoded_size(tmp_path):
    write_image_folder(tmp_path / "pics", ["a", "b"], per_class=10, size=12)
    size_mb = 20 * 3 * 64 * 64 / 2**20  # 20 images, decoded at 64 px RGB: 0.23 MB
    fits = build(tmp_path / "pics", image_size=64, memory_limit_mb=size_mb)
    over = build(tmp_path / "pics", image_size=64, memory_limit_mb=size_mb * 0.99)
    assert isinstance(fits.train, InMemorySplit) and isinstance(over.train, FolderSplit)
    over.close()
    # the workers that run beside training, which the run's torch threads leave CPUs to
    streamed = build(tmp_path / "pics", num_workers=1, memory_limit_mb=0)
    decoded = build(tmp_path / "pics", num_workers=1)
    assert (streamed.loader_workers, decoded.loader_workers) == (1, 0)
    streamed.close()


def test_auto_workers_rule(monkeypatch):
    for cpus, in_memory, expected in [
        (2, False, 0),  # 2 cores: a torch thread trains faster than a decoding process
        (2, True, 2),  # decoding once, before training: every core decodes
        (16, False, 4),  # streamed: a quarter of the CPUs
        (16, True, MAX_AUTO_WORKERS),
        (1, True, 0),
    ]:
        monkeypatch.setattr("dlrun.data.folder_load.usable_cpus", lambda c=cpus: c)
        assert auto_workers("auto", in_memory) == expected, (cpus, in_memory)
    assert auto_workers("auto", False, "cuda") == 0  # 1 CPU (the last patch): none to spare
    monkeypatch.setattr("dlrun.data.folder_load.usable_cpus", lambda: 16)
    assert auto_workers("auto", False, "cuda") == MAX_AUTO_WORKERS  # a GPU run streams wide
    assert auto_workers(3, False) == 3  # a number is kept as typed


def test_bad_channel_and_worker_settings_are_refused(tmp_path):
    write_image_folder(tmp_path / "pics", ["a", "b"], per_class=3, size=8)
    with pytest.raises(ValueError, match="channels=2 is invalid: use auto, 1 or 3"):
        build(tmp_path / "pics", channels=2)
    with pytest.raises(ValueError, match="num_workers=-1 is invalid"):
        build(tmp_path / "pics", num_workers=-1)
    assert np.isfinite(build(tmp_path / "pics").images.mean).all()
