"""Whole-batch image transforms: normalisation, random crop with padding, flip; train only."""

import torch
import torch.nn.functional as F

from dlrun.data.augment import ImageBatchTransform, random_crop, random_flip
from dlrun.data.vision import image_transforms


def _images(n=16, c=3, h=8, w=8):
    return torch.randint(
        0, 256, (n, c, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )


def test_normalise_matches_the_formula_and_keeps_shape():
    x = _images()
    tf = ImageBatchTransform([0.1, 0.2, 0.3], [0.5, 0.25, 0.2])
    out = tf({"x": x, "y": torch.zeros(16, dtype=torch.long)})
    expected = (x.float() / 255 - torch.tensor([0.1, 0.2, 0.3])[:, None, None]) / torch.tensor(
        [0.5, 0.25, 0.2]
    )[:, None, None]
    assert out["x"].dtype == torch.float32 and out["x"].shape == x.shape
    torch.testing.assert_close(out["x"], expected)
    assert out["y"] is not None and x.dtype == torch.uint8  # input untouched


def test_random_crop_is_a_window_of_the_zero_padded_image():
    x = _images(n=32)
    torch.manual_seed(0)
    out = random_crop(x, 2)
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = F.pad(x, (2, 2, 2, 2))
    offsets = set()
    for i in range(len(x)):
        matches = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if torch.equal(padded[i, :, dy : dy + 8, dx : dx + 8], out[i])
        ]
        assert matches, f"image {i} is not a crop of its padded original"
        offsets.add(matches[0])
    assert len(offsets) > 5  # offsets differ per image, not one shift for the whole batch


def test_random_flip_mirrors_about_half_of_the_images():
    x = _images(n=200)
    torch.manual_seed(0)
    out = random_flip(x)
    flipped = [torch.equal(out[i], x[i].flip(-1)) for i in range(len(x))]
    kept = [torch.equal(out[i], x[i]) for i in range(len(x))]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 60 < sum(flipped) < 140


def test_augmentation_is_repeatable_under_a_seed_and_varies_without_it():
    tf = ImageBatchTransform([0.5] * 3, [0.25] * 3, crop_padding=4, flip=True)
    batch = {"x": _images(), "y": torch.arange(16)}
    torch.manual_seed(7)
    first = tf(batch)["x"]
    torch.manual_seed(7)
    again = tf(batch)["x"]
    later = tf(batch)["x"]
    assert torch.equal(first, again)
    assert not torch.equal(first, later)


def test_only_the_training_transform_augments():
    train, evaluate = image_transforms([0.5], [0.5], augment="basic", crop_padding=2, flip=True)
    assert train.augments and not evaluate.augments
    x = {"x": _images(c=1)}
    torch.manual_seed(0)
    a = evaluate(x)["x"]
    b = evaluate(x)["x"]
    assert torch.equal(a, b) and torch.equal(a, train.normalize(x["x"]))
    off, _ = image_transforms([0.5], [0.5], augment="none", crop_padding=2, flip=True)
    assert not off.augments
