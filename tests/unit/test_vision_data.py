"""Vision dataset builders on tiny files in each dataset's real on-disk format (in-process)."""

import pytest
import torch

from dlrun.data import folder, vision
from dlrun.data.bundle import InMemorySplit
from dlrun.errors import DataError
from tests.datasets import write_cifar, write_image_folder, write_mnist

ARGS = {"download": False, "val_fraction": 0.25, "seed": 0}
DEAD_PROXY = "http://127.0.0.1:9"  # a refused connection: "offline" even on a networked machine


@pytest.fixture
def offline(monkeypatch):
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, DEAD_PROXY)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)


@pytest.mark.parametrize("name,fashion", [("mnist", False), ("fashion_mnist", True)])
def test_mnist_family_is_held_in_memory_as_uint8(tmp_path, name, fashion):
    write_mnist(tmp_path, n_train=40, n_test=12, fashion=fashion)
    data = getattr(vision, name)(str(tmp_path), **ARGS)
    assert isinstance(data.train, InMemorySplit)
    assert (len(data.train), len(data.val), len(data.test)) == (30, 10, 12)
    assert data.train.tensors["x"].dtype == torch.uint8 and data.input_shape == (1, 28, 28)
    assert data.num_classes == 10 and len(data.class_names) == 10
    assert data.images.to_state() == {
        "mean": list(vision.SETS[name].mean),
        "std": list(vision.SETS[name].std),
    }
    batch = next(data.train.batches(8))
    assert batch["x"].dtype == torch.float32 and batch["x"].shape == (8, 1, 28, 28)
    assert batch["y"].dtype == torch.long
    assert not data.train.transform.augments  # MNIST: augmentation off by default


def test_cifar_augments_train_batches_only(tmp_path, monkeypatch):
    monkeypatch.setattr(vision, "VERIFY_MD5", False)
    write_cifar(tmp_path, n_train=50, n_test=20)
    data = vision.cifar10(str(tmp_path), **ARGS)
    assert data.input_shape == (3, 32, 32) and data.class_names[0] == "airplane"
    assert data.train.transform.augments and not data.val.transform.augments
    assert not data.test.transform.augments
    torch.manual_seed(0)
    first = next(data.val.batches(100))["x"]
    assert torch.equal(first, next(data.val.batches(100))["x"])  # val: no randomness


def test_cifar100_has_100_fine_classes(tmp_path, monkeypatch):
    monkeypatch.setattr(vision, "VERIFY_MD5", False)
    write_cifar(tmp_path, n_train=30, n_test=10, cifar100=True)
    data = vision.cifar100(str(tmp_path), **ARGS)
    assert data.num_classes == 100 and len(data.test) == 10


def test_cifar_md5_is_checked_unless_the_test_only_switch_is_off(tmp_path, monkeypatch):
    assert vision.VERIFY_MD5  # the default: checked
    write_cifar(tmp_path)
    with pytest.raises(DataError, match="fail torchvision's MD5 check") as err:
        vision.cifar10(str(tmp_path), **ARGS)
    assert str(tmp_path / "cifar-10-batches-py") in str(err.value)


def test_limit_train_keeps_the_first_images(tmp_path):
    write_mnist(tmp_path, n_train=40, n_test=12)
    data = vision.mnist(str(tmp_path), **{**ARGS, "val_fraction": 0.1}, limit_train=20)
    assert len(data.train) + len(data.val) == 20
    with pytest.raises(ValueError, match="^limit_train=0 must be"):  # build adds "data."
        vision.mnist(str(tmp_path), **ARGS, limit_train=0)


def test_missing_and_offline_is_one_line_naming_folder_and_files(tmp_path, offline):
    with pytest.raises(DataError) as err:
        vision.mnist(str(tmp_path / "cache"), **{**ARGS, "download": True})
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path / "cache" / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert "downloading them failed" in message


def test_missing_without_download_says_so(tmp_path):
    with pytest.raises(DataError, match="data.download=false"):
        vision.cifar10(str(tmp_path), **ARGS)


def test_image_folder_follows_the_loops_order(tmp_path):
    write_image_folder(tmp_path / "pics", ["a", "b", "c"], per_class=6, size=12)
    data = folder.image_folder(
        str(tmp_path / "pics"),
        val_fraction=0.2,
        seed=0,
        image_size=16,
        num_workers=0,
        augment="none",
    )
    assert (len(data.train), len(data.val), len(data.test)) == (
        11,
        3,
        4,
    )  # 18 images: 4 test, 3 of 14 val
    assert data.input_shape == (3, 16, 16) and data.class_names == ["a", "b", "c"]
    assert len(data.images.mean) == 3 and data.source == f"data.path={tmp_path / 'pics'}"
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(1))
    by_order = torch.cat([b["y"] for b in data.train.batches(5, order)])
    storage = torch.cat([b["y"] for b in data.train.batches(5)])
    assert torch.equal(by_order, storage[order])
    resumed = torch.cat([b["y"] for b in data.train.batches(5, order, start_batch=1)])
    assert torch.equal(resumed, by_order[5:])
    x = next(data.train.batches(4))["x"]
    assert x.dtype == torch.float32 and x.shape == (4, 3, 16, 16)


def test_image_folder_bad_path_and_mismatched_test_classes(tmp_path):
    with pytest.raises(DataError, match="data.path=.* is not a folder"):
        folder.image_folder(str(tmp_path / "nope"), val_fraction=0.2, seed=0)
    write_image_folder(tmp_path / "train", ["a", "b"], per_class=4, size=8)
    write_image_folder(tmp_path / "test", ["a", "c"], per_class=2, size=8)
    with pytest.raises(DataError, match="data.test_path=.* has classes"):
        folder.image_folder(
            str(tmp_path / "train"),
            val_fraction=0.2,
            seed=0,
            test_path=str(tmp_path / "test"),
            num_workers=0,
        )
