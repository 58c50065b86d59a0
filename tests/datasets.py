"""Tiny datasets written in each dataset's real on-disk format, where torchvision looks for them.

Tests (and benchmarks) run dlrun's real loading code on these files. Images are learnable, not
noise: each class is a bright block at its own place (plus noise), so a few steps of training
already beat chance. Pass `images`/`labels` to write given arrays instead.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def class_images(
    n: int, num_classes: int, shape: tuple[int, ...], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images of `shape` (H, W) or (H, W, C), int labels): one bright block per class."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(n, *shape), dtype=np.uint8)
    h, w = shape[:2]
    cells = int(np.ceil(np.sqrt(num_classes)))
    ch, cw = max(1, h // cells), max(1, w // cells)
    for i, label in enumerate(labels):
        r, c = divmod(int(label), cells)
        images[i, r * ch : (r + 1) * ch, c * cw : (c + 1) * cw] = 220
    return images, labels


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uint8 array in the IDX format of the MNIST files (big-endian dims after a magic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_mnist(
    root: Path | str,
    n_train: int = 64,
    n_test: int = 32,
    fashion: bool = False,
    *,
    images: dict[str, np.ndarray] | None = None,
    labels: dict[str, np.ndarray] | None = None,
) -> Path:
    """MNIST (or Fashion-MNIST) idx files in root/MNIST/raw; returns that folder.

    `images`/`labels` map "train"/"test" to (N, 28, 28) uint8 arrays and (N,) labels."""
    folder = Path(root) / ("FashionMNIST" if fashion else "MNIST") / "raw"
    for split, n in (("train", n_train), ("test", n_test)):
        if images is not None and labels is not None:
            x, y = images[split], labels[split]
        else:
            x, y = class_images(n, 10, (28, 28), seed=1 if split == "train" else 2)
        image_file, label_file = MNIST_FILES[split]
        write_idx(folder / image_file, x)
        write_idx(folder / label_file, np.asarray(y, dtype=np.uint8))
    return folder


def _pickle(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_cifar(
    root: Path | str, n_train: int = 50, n_test: int = 20, cifar100: bool = False
) -> Path:
    """CIFAR-10 (five data batches, test batch, meta) or CIFAR-100 (train, test, meta) python
    pickles with (N, 3072) uint8 rows (channel-major), as the official archives hold them.

    Their MD5 sums cannot match the official ones: run dlrun with checksums=False
    (tests.conftest.run_dlrun)."""
    classes = 100 if cifar100 else 10
    folder = Path(root) / ("cifar-100-python" if cifar100 else "cifar-10-batches-py")
    label_key = "fine_labels" if cifar100 else "labels"

    def rows(n: int, seed: int) -> tuple[np.ndarray, list[int]]:
        x, y = class_images(n, classes, (32, 32, 3), seed)
        return x.transpose(0, 3, 1, 2).reshape(n, 3072), [int(v) for v in y]

    if cifar100:
        for name, n, seed in (("train", n_train, 1), ("test", n_test, 2)):
            x, y = rows(n, seed)
            _pickle(folder / name, {"data": x, label_key: y, "coarse_labels": [v // 5 for v in y]})
        _pickle(
            folder / "meta",
            {
                "fine_label_names": [f"class{i}" for i in range(100)],
                "coarse_label_names": [f"super{i}" for i in range(20)],
            },
        )
        return folder
    x, y = rows(n_train, 1)
    for i, part in enumerate(np.array_split(np.arange(n_train), 5), start=1):
        _pickle(folder / f"data_batch_{i}", {"data": x[part], label_key: [y[j] for j in part]})
    x, y = rows(n_test, 2)
    _pickle(folder / "test_batch", {"data": x, label_key: y})
    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    _pickle(folder / "batches.meta", {"label_names": names})
    return folder


def write_image_folder(
    path: Path | str, classes: list[str], per_class: int, size: int = 24, grey: bool = False
) -> Path:
    """PNG files in path/<class>/<i>.png; returns path. Heights vary by class (size, size+1,
    size+2) so the loader's resize matters. Each class has its own coloured block; `grey`
    writes one-channel (PIL mode L) files instead of RGB."""
    from PIL import Image

    root, rng = Path(path), np.random.default_rng(10)
    cells = int(np.ceil(np.sqrt(len(classes))))
    block = max(1, size // cells)
    for k, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        r, c = divmod(k, cells)
        for i in range(per_class):
            img = rng.integers(0, 60, size=(size + k % 3, size, 3), dtype=np.uint8)
            img[r * block : (r + 1) * block, c * block : (c + 1) * block] = (220, 40 * k % 255, 30)
            picture = Image.fromarray(img)
            (picture.convert("L") if grey else picture).save(folder / f"{i}.png")
    return root
