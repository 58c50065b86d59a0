"""An unreadable image in image_folder: one line naming the file (in the statistics pass and in
training alike), or skipped and counted with data.skip_bad=true."""

import pytest

from dlrun.data import folder
from dlrun.errors import DataError
from tests.datasets import write_image_folder


def pictures(tmp_path):
    root = write_image_folder(tmp_path / "pics", ["a", "b"], per_class=8, size=12)
    (root / "a" / "3.png").write_bytes(b"this is not a png")
    png = (root / "b" / "5.png").read_bytes()
    (root / "b" / "5.png").write_bytes(png[: len(png) // 2])  # truncated half-way
    return root


def build(root, workers=0, **kw):
    return folder.image_folder(
        str(root),
        val_fraction=0.2,
        seed=0,
        image_size=16,
        num_workers=workers,
        augment="none",
        **kw,
    )


def read_everything(data):
    return sum(len(b["y"]) for split in (data.train, data.val, data.test) for b in split.batches(4))


@pytest.mark.parametrize("workers", [0, 1])
@pytest.mark.parametrize("memory_limit_mb", [0, 64])  # streamed, or decoded once into memory
def test_an_unreadable_image_is_one_line_naming_the_file(tmp_path, workers, memory_limit_mb):
    root = pictures(tmp_path)
    with pytest.raises(DataError) as err:  # the decoding or statistics pass, or a batch later
        read_everything(build(root, workers, memory_limit_mb=memory_limit_mb))
    message = str(err.value)
    assert "\n" not in message and "data.skip_bad=true" in message
    assert message.startswith((str(root / "a" / "3.png"), str(root / "b" / "5.png")))
    assert "cannot be read as an image" in message


def test_an_unreadable_image_during_training_names_the_file(tmp_path):
    root = pictures(tmp_path)  # statistics given and streamed: the first read is a batch
    data = build(root, mean=[0.5] * 3, std=[0.25] * 3, memory_limit_mb=0)
    with pytest.raises(DataError, match=r"pics/(a/3|b/5).png cannot be read as an image"):
        read_everything(data)


@pytest.mark.parametrize("memory_limit_mb", [0, 64])
def test_skip_bad_skips_and_counts_unreadable_images(tmp_path, memory_limit_mb):
    root = pictures(tmp_path)
    data = build(root, skip_bad=True, memory_limit_mb=memory_limit_mb)
    assert read_everything(data) == 14  # 16 files, 2 unreadable
    assert sorted(data.skipped) == [str(root / "a" / "3.png"), str(root / "b" / "5.png")]


def test_a_decompression_bomb_in_a_training_folder_is_one_line(tmp_path):
    """A few hundred KB of PNG claiming 900 megapixels: before, PIL's DecompressionBombError
    escaped the unreadable-image check as a traceback (and an image under PIL's hard limit was
    decoded in full after a warning)."""
    from tests.security.test_predict_inputs_are_data import _bomb_png

    root = write_image_folder(tmp_path / "pics", ["a", "b"], per_class=8, size=12)
    _bomb_png(root / "a" / "3.png")
    with pytest.raises(DataError) as err:  # streamed and in-memory folders share the loader
        read_everything(build(root, memory_limit_mb=0))
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(root / "a" / "3.png"))
    assert "decompression bomb" in message
