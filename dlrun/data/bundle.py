"""What every dataset builder returns, and how in-memory splits are batched.

In-memory data is held as tensors on the run's device and batched by slicing with a permuted
index: no per-sample Dataset.__getitem__ and collate (that costs ~0.3 ms a batch in Python).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from dlrun.data.table_prep import TablePreprocessing
from dlrun.errors import ConfigError

Batch = dict[str, Tensor]
BatchTransform = Callable[[Batch], Batch]


class Split(Protocol):
    """Anything the loop can iterate in batches (in memory, or streamed from disk)."""

    def __len__(self) -> int: ...

    def batches(
        self, batch_size: int, order: Tensor | None = None, start_batch: int = 0
    ) -> Iterator[Batch]: ...

    def to(self, device: torch.device) -> Split: ...


@dataclass
class InMemorySplit:
    """A split held as same-length tensors ("x", "y", ...), batched by index slicing.

    `transform` runs on each whole batch on the tensors' device (e.g. uint8 -> normalised float,
    random crops and flips for training batches).
    """

    tensors: dict[str, Tensor]
    transform: BatchTransform | None = None

    def __post_init__(self) -> None:
        sizes = {k: len(v) for k, v in self.tensors.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"split tensors differ in length: {sizes}")

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def to(self, device: torch.device) -> InMemorySplit:
        if device.type == "cuda":  # pinned host memory lets the copy run asynchronously
            moved = {
                k: v.pin_memory().to(device, non_blocking=True) for k, v in self.tensors.items()
            }
        else:
            moved = {k: v.to(device) for k, v in self.tensors.items()}
        return InMemorySplit(moved, self.transform)

    def subset(self, index: Tensor) -> InMemorySplit:
        return InMemorySplit({k: v[index] for k, v in self.tensors.items()}, self.transform)

    def with_transform(self, transform: BatchTransform | None) -> InMemorySplit:
        return InMemorySplit(self.tensors, transform)

    def labels(self) -> Tensor:
        """The class of each sample (the "y" tensor)."""
        return self.tensors["y"]

    def batches(
        self, batch_size: int, order: Tensor | None = None, start_batch: int = 0
    ) -> Iterator[Batch]:
        """Yield batches in `order` (a permutation of indices) or in storage order."""
        n = len(self)
        for start in range(start_batch * batch_size, n, batch_size):
            if order is None:
                batch = {k: v[start : start + batch_size] for k, v in self.tensors.items()}
            else:
                idx = order[start : start + batch_size]
                # index_select, not v[idx]: the same rows, without advanced indexing's
                # per-call set-up (~2 us against ~9-11 us per tensor on CPU)
                batch = {k: v.index_select(0, idx) for k, v in self.tensors.items()}
            yield self.transform(batch) if self.transform else batch


def num_batches(n_samples: int, batch_size: int) -> int:
    return -(-n_samples // batch_size)


@dataclass(frozen=True)
class ImageFacts:
    """How image data was normalised, one value per channel: pixels in [0, 1] = x * std + mean.
    The channel count and size come from the bundle's input_shape (C, H, W)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean={list(self.mean)} and std={list(self.std)} differ in length")

    def to_state(self) -> dict[str, list[float]]:
        """The saved form ({"mean": [...], "std": [...]}), as model.yaml stores it."""
        return {"mean": list(self.mean), "std": list(self.std)}


@dataclass(frozen=True)
class TextFacts:
    """What text data tells a model (vocab_size, padding_idx) and what is saved with it
    (`state`: tokenizer, lowercase, max_length, the vocabulary, class names)."""

    vocab_size: int
    padding_idx: int
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataBundle:
    """Train/val/test splits and what the data decides, in three roles:

    - what the model is told: `model_facts()`, offered to its constructor by parameter name
      (input_shape, in_features, num_classes; in_channels/image_size only when the bundle holds
      images, input_shape (C, H, W); vocab_size/padding_idx only for text), and `batch_inputs`,
      the batch keys its forward takes;
    - what is saved with the model: `checkpoint_state()` (the text vocabulary, a table's
      preprocessing) and the prediction preprocessing made from `images`, `text` and
      `preprocessing` (dlrun/predict/preprocessing.py);
    - what the run folder gets: `run_files`, JSON files by name (text: labels.json).
    """

    train: Split
    val: Split
    test: Split
    task: str  # classification | regression (generative models override it)
    input_shape: tuple[int, ...]  # one sample's shape, e.g. (64,) or (1, 28, 28)
    num_classes: int | None = None
    num_targets: int = 1  # regression outputs
    class_names: list[str] | None = None
    # Image data only: its per-channel normalisation (generative tasks map back to pixels).
    images: ImageFacts | None = None
    # Text data only: vocabulary size, padding id, the vocabulary state saved with the model.
    text: TextFacts | None = None
    # The batch keys the model's forward takes (text: ("x", "lengths")).
    batch_inputs: tuple[str, ...] = ("x",)
    # JSON files the run folder gets, by name (text: labels.json, class name -> index).
    run_files: dict[str, Any] = field(default_factory=dict)
    # Where the data came from, for messages ("data.path=pics").
    source: str = "the data"
    # Saved with the model for prediction: a table's fitted preprocessing (feature statistics,
    # categories, imputation values, target scaling, class names), fitted on the train split.
    preprocessing: TablePreprocessing | None = None
    # Optimizer steps this data needs to converge with trainer.epochs=auto (a small table asks
    # for more epochs than the default 30); None: the default epochs.
    min_steps: int | None = None
    # The metric that picks the best epoch under trainer.monitor=auto, where the data decides
    # (a table's tiny validation split: its loss); None: the task's default.
    monitor: str | None = None
    # Where the data is, as absolute paths (data.path/test_path of a table): recorded in the
    # checkpoint so mode=eval finds it from any folder (a path typed on eval's command line wins).
    location: dict[str, str] = field(default_factory=dict)
    # Files the data skipped as unreadable (image_folder with data.skip_bad=true), filled as
    # batches are read; the run record counts them.
    skipped: list[str] = field(default_factory=list)
    # Data-loading processes that run beside training (a streamed image folder's), which the
    # run's torch threads leave their CPUs to.
    loader_workers: int = 0

    def __post_init__(self) -> None:
        self.input_shape = tuple(self.input_shape)
        self.batch_inputs = tuple(self.batch_inputs)
        if self.images is not None and (
            len(self.input_shape) != 3 or len(self.images.mean) != self.input_shape[0]
        ):
            raise ValueError(
                f"images (normalisation for {len(self.images.mean)} channel(s)) need an "
                f"input_shape of (channels, height, width), not {self.input_shape}"
            )

    @property
    def holds_images(self) -> bool:
        """Whether one sample is an image (C, H, W)."""
        return len(self.input_shape) == 3

    def train_class_counts(self) -> Tensor:
        """Samples per class in the training split (int64, num_classes long)."""
        labels = getattr(self.train, "labels", None)
        y = labels() if callable(labels) else self.train.tensors["y"]
        return torch.bincount(y.cpu().long().flatten(), minlength=self.num_classes or 0)

    def checkpoint_state(self) -> dict[str, Any]:
        """What a checkpoint saves of the data (plain values): the text vocabulary under "text",
        a table's preprocessing under "table". A builder taking `checkpoint_state` gets it back."""
        state: dict[str, Any] = {}
        if self.text is not None:
            state["text"] = dict(self.text.state)
        if self.preprocessing is not None:
            state["table"] = self.preprocessing.to_state()
        if self.location:
            state["location"] = dict(self.location)
        return state

    def model_facts(self) -> dict[str, Any]:
        """Values the data decides, offered to model constructors by parameter name."""
        facts: dict[str, Any] = {
            "input_shape": self.input_shape,
            "in_features": int(torch.tensor(self.input_shape).prod()),
        }
        if self.holds_images:
            facts["in_channels"], facts["image_size"] = self.input_shape[0], self.input_shape[-1]
        if self.num_classes is not None:
            facts["num_classes"] = self.num_classes
        if self.text is not None:
            facts["vocab_size"], facts["padding_idx"] = self.text.vocab_size, self.text.padding_idx
        return facts

    def close(self) -> None:
        """Stop the data's worker processes (image folders with data.num_workers > 0) at the end
        of a run: the Python API and in-process callers would otherwise keep them, and wait ~5 s
        for each when they are garbage-collected."""
        for split in (self.train, self.val, self.test):
            close = getattr(split, "close", None)
            if close is not None:
                close()

    def to(self, device: torch.device) -> DataBundle:
        self.train, self.val, self.test = (s.to(device) for s in (self.train, self.val, self.test))
        return self


def carve_validation(
    train: InMemorySplit, val_fraction: float | str, seed: int
) -> tuple[InMemorySplit, InMemorySplit]:
    """Split `train` into (train, val) with a permutation decided by `seed` (`auto`: 0.1; a
    table's auto is decided by its own size, dlrun/data/tabular.py)."""
    n = len(train)
    val_fraction = 0.1 if val_fraction == "auto" else val_fraction
    n_val = max(1, int(round(n * val_fraction)))
    if n_val >= n:
        raise ConfigError(
            f"data.val_fraction={val_fraction} leaves no training samples out of {n}: lower it"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return train.subset(perm[n_val:]), train.subset(perm[:n_val])
