"""The user's own pictures: torchvision ImageFolder (one sub-folder per class) streamed from disk.

Workers decode and resize each image to uint8 (C, H, W); the batch is copied to the run's device
(pinned memory and non-blocking copies on CUDA) and normalised and augmented there as a whole
batch, exactly like the in-memory datasets. The loop's seeded permutation decides the sample
order, so runs stay reproducible and resumable.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from dlrun.data.augment import ImageBatchTransform, Policy
from dlrun.data.bundle import Batch, DataBundle, ImageFacts, InMemorySplit, carve_validation
from dlrun.data.folder_load import auto_workers, decode, decoded_mb, folder_channels, loader_for
from dlrun.data.split import holdout
from dlrun.data.vision import check_stats, image_transforms
from dlrun.errors import DataError

log = logging.getLogger("dlrun")


class _IndexSampler(Sampler[int]):
    """Yields whatever indices were set last: one DataLoader (and its persistent workers) serves
    every epoch's order."""

    def __init__(self) -> None:
        self.indices: list[int] = []

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class _Readable(Dataset):
    """An ImageFolder whose unreadable files come back as (blank image, class, reason) instead of
    an exception in a worker process (which DataLoader turns into a multi-line traceback)."""

    def __init__(self, dataset: Any, image_size: int, channels: int = 3) -> None:
        self.dataset, self.image_size, self.channels = dataset, image_size, channels

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Tensor, int, str]:
        try:
            x, y = self.dataset[index]
            return x, y, ""
        except (OSError, ValueError, SyntaxError) as err:  # PIL: truncated, not an image...
            size = (self.channels, self.image_size, self.image_size)
            blank = torch.zeros(size, dtype=torch.uint8)
            return blank, self.dataset.targets[index], str(err).splitlines()[0] or "unreadable"


class FolderSource:
    """One ImageFolder and its DataLoaders, shared by the splits cut from it, so worker processes
    start once per batch size and are kept between epochs. An unreadable image is a one-line
    DataError naming it, or (skip_bad) is left out of its batch and added to `skipped`."""

    def __init__(
        self,
        dataset: Any,
        num_workers: int,
        image_size: int = 64,
        skip_bad: bool = False,
        skipped: list[str] | None = None,
        channels: int = 3,
    ) -> None:
        self.dataset, self.num_workers = dataset, num_workers
        self.readable = _Readable(dataset, image_size, channels)
        self.skip_bad = skip_bad
        self.skipped = skipped if skipped is not None else []
        self._loaders: dict[tuple[int, bool], tuple[DataLoader, _IndexSampler]] = {}

    def unreadable(self, index: int, reason: str) -> None:
        """Refuse (or, with skip_bad, count and log once) the image at `index`."""
        file = self.dataset.samples[index][0]
        if not self.skip_bad:
            raise DataError(
                f"{file} cannot be read as an image ({reason}): delete or replace it, or set "
                "data.skip_bad=true to skip unreadable images"
            )
        if file not in self.skipped:
            self.skipped.append(file)
            log.warning(f"skipped unreadable image {file} ({reason}); {len(self.skipped)} so far")

    def loader(self, batch_size: int, indices: list[int], pin: bool) -> DataLoader:
        if (batch_size, pin) not in self._loaders:
            sampler = _IndexSampler()
            loader = DataLoader(
                self.readable,
                batch_size=batch_size,
                sampler=sampler,
                num_workers=self.num_workers,
                pin_memory=pin,
                persistent_workers=self.num_workers > 0,
                # Its own generator: starting an iterator draws a worker seed, which must not
                # consume the global RNG that dropout and augmentation use.
                generator=torch.Generator(),
            )
            self._loaders[(batch_size, pin)] = (loader, sampler)
        loader, sampler = self._loaders[(batch_size, pin)]
        sampler.indices = indices
        return loader

    def close(self) -> None:
        """Stop the loaders' worker processes now (persistent workers live in the loader's
        iterator; torch has no public call for it)."""
        for loader, _ in self._loaders.values():
            iterator = getattr(loader, "_iterator", None)
            shutdown = getattr(iterator, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()
            loader._iterator = None
        self._loaders.clear()


class FolderSplit:
    """A subset of a FolderSource's images, batched through its DataLoader (the Split protocol)."""

    def __init__(
        self,
        source: FolderSource,
        indices: Sequence[int],
        transform: ImageBatchTransform | None = None,
        device: torch.device | None = None,
    ) -> None:
        self.source, self.indices = source, [int(i) for i in indices]
        self.transform, self.device = transform, device or torch.device("cpu")

    def __len__(self) -> int:
        return len(self.indices)

    def to(self, device: torch.device) -> FolderSplit:
        return FolderSplit(self.source, self.indices, self.transform, device)

    def subset(self, index: Tensor) -> FolderSplit:
        return FolderSplit(
            self.source, [self.indices[i] for i in index.tolist()], self.transform, self.device
        )

    def close(self) -> None:
        self.source.close()

    def labels(self) -> Tensor:
        """The class of each image of this split (no image is read)."""
        targets = self.source.dataset.targets
        return torch.tensor([targets[i] for i in self.indices], dtype=torch.long)

    def with_transform(self, transform: ImageBatchTransform) -> FolderSplit:
        return FolderSplit(self.source, self.indices, transform, self.device)

    def batches(
        self, batch_size: int, order: Tensor | None = None, start_batch: int = 0
    ) -> Iterator[Batch]:
        """Batches in `order` (a permutation of this split's positions) or in storage order."""
        positions = order.tolist() if order is not None else range(len(self.indices))
        wanted = [self.indices[p] for p in positions][start_batch * batch_size :]
        if not wanted:
            return
        cuda = self.device.type == "cuda"
        done = 0
        for x, y, errors in self.source.loader(batch_size, wanted, pin=cuda):
            if any(errors):  # unreadable files: refused, or left out of the batch (skip_bad)
                for i, reason in enumerate(errors):
                    if reason:
                        self.source.unreadable(wanted[done + i], reason)
                ok = torch.tensor([not e for e in errors])
                x, y = x[ok], y[ok]
            done += len(errors)
            if not len(y):
                continue
            batch = {
                "x": x.to(self.device, non_blocking=cuda),
                "y": y.to(self.device, non_blocking=cuda),
            }
            yield self.transform(batch) if self.transform else batch


def resize_transform(height: int, width: int) -> object:
    """PIL image -> uint8 (C, H, W) tensor of the given size: what every image is turned into
    before it is batched (training, and prediction on new pictures: dlrun/predict/inputs.py)."""
    from torchvision import transforms

    return transforms.Compose([transforms.Resize((height, width)), transforms.PILToTensor()])


def _open_folder(path: str, key: str, image_size: int) -> Any:
    from torchvision.datasets import ImageFolder

    if not Path(path).is_dir():
        raise DataError(
            f"{key}={path} is not a folder: give a folder with one sub-folder of images per class"
        )
    try:
        return ImageFolder(path, transform=resize_transform(image_size, image_size))
    except (FileNotFoundError, OSError) as err:
        raise DataError(
            f"{key}={path}: {err}; it needs one sub-folder of images per class"
        ) from None


def _split_test(
    targets: list[int], test_fraction: float, split_seed: int
) -> tuple[list[int], list[int]]:
    """(train, test) indices, stratified by class (dlrun.data.split)."""
    train, test = holdout(len(targets), test_fraction, split_seed, torch.tensor(targets))
    if len(train) == 0:
        raise DataError(
            f"data.test_fraction={test_fraction} leaves no training image out of {len(targets)}: "
            "lower it, or give a test folder with data.test_path"
        )
    return train.tolist(), test.tolist()


def folder_stats(split: Any, samples: int, seed: int) -> tuple[list[float], list[float]]:
    """Per-channel mean/std (0..1 scale) over the pixels of up to `samples` training images."""
    pick = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:samples]
    total, squares, count = 0.0, 0.0, 0
    for batch in split.subset(pick).batches(64):
        x = batch["x"].double().div_(255).transpose(0, 1).flatten(1)  # (C, pixels)
        total, squares, count = total + x.sum(1), squares + (x * x).sum(1), count + x.shape[1]
    if not count:
        raise DataError("no training image could be read: check data.path")
    mean = total / count
    std = (squares / count - mean * mean).clamp(min=1e-12).sqrt()
    return mean.tolist(), std.tolist()


def _check_settings(
    image_size: int, num_workers: int | str, channels: int | str, memory_limit_mb: float
) -> None:
    if not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"image_size={image_size!r} is invalid: use an integer >= 8")
    if num_workers != "auto" and (not isinstance(num_workers, int) or num_workers < 0):
        raise ValueError(f"num_workers={num_workers!r} is invalid: use auto or an integer >= 0")
    if channels not in ("auto", 1, 3):
        raise ValueError(f"channels={channels!r} is invalid: use auto, 1 or 3")
    if isinstance(memory_limit_mb, bool) or memory_limit_mb < 0:
        raise ValueError(f"memory_limit_mb={memory_limit_mb!r} is invalid: use a number >= 0")


def _train_and_test(
    source: FolderSource,
    test_source: FolderSource | None,
    test_path: str | None,
    test_fraction: float,
    split_seed: int,
) -> tuple[list[int], FolderSplit]:
    """The training indices of `source`, and the test split: all of `test_source` (data.test_path,
    which must hold the same class folders), or `test_fraction` of `source` fixed by split_seed."""
    if test_source is None:
        train_idx, test_idx = _split_test(source.dataset.targets, test_fraction, split_seed)
        return train_idx, FolderSplit(source, test_idx)
    classes = list(source.dataset.classes)
    if list(test_source.dataset.classes) != classes:
        raise DataError(
            f"data.test_path={test_path} has classes {test_source.dataset.classes}, "
            f"but data.path has {classes}: give both the same class folders"
        )
    test = FolderSplit(test_source, range(len(test_source.dataset)))
    return list(range(len(source.dataset))), test


@dataclass
class DecodedSplit(InMemorySplit):
    """Images of a folder decoded into memory, with the file each row came from (the ids of
    predictions_test.csv)."""

    files: list[str] = field(default_factory=list)

    def to(self, device: torch.device) -> DecodedSplit:
        return DecodedSplit(super().to(device).tensors, self.transform, self.files)

    def subset(self, index: Tensor) -> DecodedSplit:
        rows = index.tolist()
        return DecodedSplit(
            super().subset(index).tensors, self.transform, [self.files[r] for r in rows]
        )

    def with_transform(self, transform: Any) -> DecodedSplit:
        return DecodedSplit(self.tensors, transform, self.files)


def _rows(source: FolderSource, indices: list[int], x: Tensor, y: Tensor, kept: list[int]) -> Any:
    """The decoded rows of `indices` (images of source.dataset; skipped ones left out)."""
    row = {index: r for r, index in enumerate(kept)}
    rows = [row[i] for i in indices if i in row]
    files = [source.dataset.samples[i][0] for i in indices if i in row]
    pick = torch.tensor(rows, dtype=torch.long)
    return DecodedSplit({"x": x[pick], "y": y[pick]}, files=files)


def _in_memory(
    source: FolderSource, train_idx: list[int], test: FolderSplit
) -> tuple[DecodedSplit, DecodedSplit]:
    """Every image decoded once (by the source's workers, which then stop): the train images and
    the test split as in-memory uint8 tensors, batched by index slicing like MNIST's."""
    x, y, kept = decode(FolderSplit(source, range(len(source.dataset))))
    source.close()
    if test.source is source:
        test_split = _rows(source, test.indices, x, y, kept)
    else:
        tx, ty, test_kept = decode(test)
        test.source.close()
        test_split = _rows(test.source, test.indices, tx, ty, test_kept)
    return _rows(source, train_idx, x, y, kept), test_split


def _sources(
    path: str, test_path: str | None, image_size: int, channels: int | str, memory_limit_mb: float
) -> tuple[Any, Any, int, bool]:
    """(the folder, the test folder or None, its channels, whether it is held in memory)."""
    dataset = _open_folder(path, "data.path", image_size)
    test_set = _open_folder(test_path, "data.test_path", image_size) if test_path else None
    files = [f for d in (dataset, test_set) if d is not None for f, _ in d.samples]
    chans = folder_channels(files, channels)
    for d in (dataset, test_set):
        if d is not None:
            d.loader = loader_for(chans)
    return dataset, test_set, chans, decoded_mb(len(files), chans, image_size) <= memory_limit_mb


def image_folder(
    path: str,
    val_fraction: float,
    seed: int,
    image_size: int = 64,
    test_path: str | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    num_workers: int | Literal["auto"] = "auto",
    channels: Literal["auto", 1, 3] = "auto",
    memory_limit_mb: float = 2048,
    augment: Policy = "basic",
    crop_padding: int = 4,
    flip: bool = True,
    mixup: float = 0.0,
    cutmix: float = 0.0,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    stats_samples: int = 500,
    skip_bad: bool = False,
    device_type: str = "cpu",
) -> DataBundle:
    """Your own pictures: `path`/<class>/<image>, resized to image_size x image_size, one channel
    (greyscale) or three (RGB); `channels: auto` keeps a folder of greyscale pictures greyscale.

    A folder whose decoded images fit in `memory_limit_mb` is decoded once and served from
    memory; a larger one is streamed by `num_workers` processes every epoch. The test split is
    `test_path` (same class folders) or `test_fraction` of `path` (fixed by `split_seed`);
    validation is carved from train by `seed`. Without `mean`/`std`, statistics come from up to
    `stats_samples` training images."""
    _check_settings(image_size, num_workers, channels, memory_limit_mb)
    dataset, test_set, chans, in_memory = _sources(
        path, test_path, image_size, channels, memory_limit_mb
    )
    check_stats(mean, std, chans)
    workers = auto_workers(num_workers, in_memory, device_type)
    skipped: list[str] = []  # unreadable files left out (skip_bad), shared by every split
    source, test_source = (
        FolderSource(d, workers, image_size, skip_bad, skipped, chans) if d is not None else None
        for d in (dataset, test_set)
    )
    classes = list(dataset.classes)
    train_idx, test = _train_and_test(source, test_source, test_path, test_fraction, split_seed)
    if in_memory:
        train_all, test = _in_memory(source, train_idx, test)
    else:
        train_all = FolderSplit(source, train_idx)
    train, val = carve_validation(train_all, val_fraction, seed)
    if mean is None or std is None:
        stats = folder_stats(train, stats_samples, split_seed)
        mean, std = mean or stats[0], std or stats[1]
    train_tf, eval_tf = image_transforms(
        mean, std, augment, crop_padding, flip, mixup, cutmix, len(classes)
    )
    return DataBundle(
        train=train.with_transform(train_tf),
        val=val.with_transform(eval_tf),
        test=test.with_transform(eval_tf),
        task="classification",
        input_shape=(chans, image_size, image_size),
        num_classes=len(classes),
        class_names=classes,
        images=ImageFacts(mean, std),
        source=f"data.path={path}",
        skipped=skipped,
        loader_workers=0 if in_memory else workers,
    )
