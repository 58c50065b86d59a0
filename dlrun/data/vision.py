"""MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 through torchvision's own dataset classes.

Each set is decoded once into uint8 tensors (N, C, H, W) held in memory - on the GPU when the run
is on one (the loop moves the bundle). Batches are sliced by index; the split's transform then
converts the whole batch to float, normalises it with the dataset's known per-channel mean/std and,
for training batches only, applies the random crop and flip (dlrun/data/augment.py).

Files live in one shared cache (`data.root`, default $DLRUN_DATA_DIR or ./data), never in a run
folder; torchvision downloads them there on first use when `data.download=true`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from dlrun.data.augment import BatchMixer, ImageBatchTransform, Policy, check_policy
from dlrun.data.bundle import DataBundle, ImageFacts, InMemorySplit, carve_validation
from dlrun.download import last_line, socket_timeout
from dlrun.errors import DataError

# TEST ONLY: tiny CIFAR files written by the tests cannot match the official MD5 sums that
# torchvision checks; the tests set this to False from Python (never an environment variable or a
# config key, so no user setting or file can switch the check off for real data).
VERIFY_MD5 = True


@dataclass(frozen=True)
class VisionSet:
    """Where torchvision keeps one dataset under the root, and its known statistics."""

    torchvision_class: str
    folder: str  # relative to data.root
    files: tuple[str, ...]
    mean: tuple[float, ...]  # per channel, on a 0..1 pixel scale, over the training set
    std: tuple[float, ...]
    md5_checked: bool = False


_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

SETS: dict[str, VisionSet] = {
    "mnist": VisionSet("MNIST", "MNIST/raw", _MNIST_FILES, (0.1307,), (0.3081,)),
    "fashion_mnist": VisionSet(
        "FashionMNIST", "FashionMNIST/raw", _MNIST_FILES, (0.2860,), (0.3530,)
    ),
    "cifar10": VisionSet(
        "CIFAR10",
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta"),
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
        md5_checked=True,
    ),
    "cifar100": VisionSet(
        "CIFAR100",
        "cifar-100-python",
        ("train", "test", "meta"),
        (0.5071, 0.4865, 0.4409),
        (0.2673, 0.2564, 0.2762),
        md5_checked=True,
    ),
}


def data_root(root: str | os.PathLike) -> Path:
    """The shared dataset cache as an absolute path (relative roots are taken from the cwd)."""
    return Path(root).expanduser().resolve()


def _without_md5(cls: type) -> type:
    """A CIFAR class whose integrity check only asks that the files exist (tests only)."""
    strip = [[name, None] for name, _ in cls.train_list], [[n, None] for n, _ in cls.test_list]
    attrs = {"train_list": strip[0], "test_list": strip[1], "meta": {**cls.meta, "md5": None}}
    return type(cls.__name__, (cls,), attrs)


def _dataset_class(spec: VisionSet) -> type:
    import torchvision.datasets

    cls = getattr(torchvision.datasets, spec.torchvision_class)
    if spec.md5_checked and not VERIFY_MD5:
        return _without_md5(cls)
    return cls


def _not_loaded(
    name: str, spec: VisionSet, root: Path, download: bool, err: Exception
) -> DataError:
    """One line naming the folder, the files expected there, and what to do."""
    where = root / spec.folder
    missing = [f for f in spec.files if not (where / f).is_file()]
    if not missing:
        problem = (
            "fail torchvision's MD5 check (corrupt, or not the official files)"
            if spec.md5_checked
            else f"cannot be read ({last_line(err)})"
        )
        return DataError(
            f"data={name}: the files in {where} {problem}: delete them so they are downloaded again"
        )
    tried = f"downloading them failed ({last_line(err)})" if download else "data.download=false"
    return DataError(
        f"data={name}: {where} lacks {', '.join(missing)} and {tried}: copy the files there, "
        "or point data.root (or DLRUN_DATA_DIR) at a folder that holds them"
    )


def load_split(
    name: str, root: Path, train: bool, download: bool
) -> tuple[Tensor, Tensor, list[str]]:
    """One official split as (uint8 images (N, C, H, W), long labels (N,), class names)."""
    spec = SETS[name]
    try:
        with socket_timeout():
            ds = _dataset_class(spec)(str(root), train=train, download=download)
        images = torch.as_tensor(ds.data)  # MNIST: (N, H, W) tensor; CIFAR: (N, H, W, C) array
        labels = torch.as_tensor(ds.targets, dtype=torch.long)
    except Exception as err:  # torchvision raises RuntimeError, URLError, pickle/parse errors
        raise _not_loaded(name, spec, root, download, err) from None
    images = images[:, None] if images.ndim == 3 else images.permute(0, 3, 1, 2)
    return images.contiguous(), labels, [str(c) for c in ds.classes]


def image_transforms(
    mean: Sequence[float],
    std: Sequence[float],
    augment: str,
    crop_padding: int,
    flip: bool,
    mixup: float = 0.0,
    cutmix: float = 0.0,
    num_classes: int = 0,
) -> tuple[ImageBatchTransform, ImageBatchTransform]:
    """(training transform, evaluation transform): only the first one augments (`augment`, a
    policy of dlrun/data/augment.py) and mixes (mixup/cutmix alphas; 0 = off)."""
    check_policy(augment, mixup, cutmix)
    on = augment != "none"
    mixer = BatchMixer(num_classes, mixup, cutmix) if mixup > 0 or cutmix > 0 else None
    train = ImageBatchTransform(
        mean, std, crop_padding if on else 0, flip and on, augment, mixer=mixer
    )
    return train, train.without_augmentation()


def check_stats(mean: Sequence[float] | None, std: Sequence[float] | None, channels: int) -> None:
    for key, values in (("mean", mean), ("std", std)):
        if values is not None and len(values) != channels:
            raise ValueError(f"{key}={list(values)} needs one value per channel ({channels})")
    if std is not None and min(std) <= 0:
        raise ValueError(f"std={list(std)} must be positive")


def _torchvision_bundle(
    name: str,
    root: str,
    download: bool,
    val_fraction: float,
    seed: int,
    augment: str,
    crop_padding: int,
    flip: bool,
    limit_train: int | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    mixup: float,
    cutmix: float,
) -> DataBundle:
    spec, folder = SETS[name], data_root(root)
    check_stats(mean, std, len(spec.mean))
    if limit_train is not None and (not isinstance(limit_train, int) or limit_train < 2):
        raise ValueError(f"limit_train={limit_train!r} must be an integer >= 2, or null")
    x, y, classes = load_split(name, folder, True, download)
    x_test, y_test, _ = load_split(name, folder, False, download)
    if limit_train:  # the first N training images (the official order), before the val carve
        x, y = x[:limit_train], y[:limit_train]
    train, val = carve_validation(InMemorySplit({"x": x, "y": y}), val_fraction, seed)
    mean, std = list(mean or spec.mean), list(std or spec.std)
    train_tf, eval_tf = image_transforms(
        mean, std, augment, crop_padding, flip, mixup, cutmix, len(classes)
    )
    return DataBundle(
        train=InMemorySplit(train.tensors, train_tf),
        val=InMemorySplit(val.tensors, eval_tf),
        test=InMemorySplit({"x": x_test, "y": y_test}, eval_tf),
        task="classification",
        input_shape=tuple(x.shape[1:]),
        num_classes=len(classes),
        class_names=classes,
        images=ImageFacts(mean, std),
    )


def mnist(
    root: str,
    download: bool,
    val_fraction: float,
    seed: int,
    augment: Policy = "none",
    crop_padding: int = 2,
    flip: bool = False,
    limit_train: int | None = None,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    mixup: float = 0.0,
    cutmix: float = 0.0,
) -> DataBundle:
    """MNIST handwritten digits: 60,000 train / 10,000 test, 1x28x28, 10 classes."""
    return _torchvision_bundle("mnist", **_args(locals()))


def fashion_mnist(
    root: str,
    download: bool,
    val_fraction: float,
    seed: int,
    augment: Policy = "none",
    crop_padding: int = 2,
    flip: bool = False,
    limit_train: int | None = None,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    mixup: float = 0.0,
    cutmix: float = 0.0,
) -> DataBundle:
    """Fashion-MNIST clothing images: 60,000 train / 10,000 test, 1x28x28, 10 classes."""
    return _torchvision_bundle("fashion_mnist", **_args(locals()))


def cifar10(
    root: str,
    download: bool,
    val_fraction: float,
    seed: int,
    augment: Policy = "basic",
    crop_padding: int = 4,
    flip: bool = True,
    limit_train: int | None = None,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    mixup: float = 0.0,
    cutmix: float = 0.0,
) -> DataBundle:
    """CIFAR-10: 50,000 train / 10,000 test, 3x32x32, 10 classes."""
    return _torchvision_bundle("cifar10", **_args(locals()))


def cifar100(
    root: str,
    download: bool,
    val_fraction: float,
    seed: int,
    augment: Policy = "basic",
    crop_padding: int = 4,
    flip: bool = True,
    limit_train: int | None = None,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    mixup: float = 0.0,
    cutmix: float = 0.0,
) -> DataBundle:
    """CIFAR-100: 50,000 train / 10,000 test, 3x32x32, 100 fine classes."""
    return _torchvision_bundle("cifar100", **_args(locals()))


def _args(local_vars: dict) -> dict:
    return {k: v for k, v in local_vars.items() if not k.startswith("_")}
