"""Readers of new inputs, one per data family, turning files into the raw tensors training had
before its batch transform: uint8 images (N, C, H, W), unscaled feature rows, token ids.

Each reader yields Chunks (at most `chunk` samples each, so a large folder of images is never
held in memory at once). A sample that cannot be read (a corrupt image, a row with a bad value)
is refused in one line naming it, or, with on_error="skip", left out and listed in `skipped`.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dlrun.data.csv_read import csv_file, not_utf8
from dlrun.data.table_prep import TablePreprocessing
from dlrun.errors import DataError

IDX_IMAGES_MAGIC = b"\x00\x00\x08\x03"  # MNIST-format image files: uint8, 3 dimensions


@dataclass
class Chunk:
    """Samples read together: ids, model inputs, true labels where the input had them, and the
    input's other columns, carried through to the predictions."""

    ids: list[str]
    tensors: dict[str, Tensor]
    targets: list[str] | None = None
    extra: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Inputs:
    """What a reader found: `id_name` names the id column (row, line, path, index)."""

    id_name: str
    chunks: Iterator[Chunk]
    total: int
    skipped: list[str] = field(default_factory=list)


class ErrorPolicy:
    """on_error=fail raises at the first bad sample; skip records it and goes on."""

    def __init__(self, on_error: str, skipped: list[str]) -> None:
        self.fail, self.skipped = on_error == "fail", skipped

    def __call__(self, where: str, reason: str) -> None:
        if self.fail:
            raise DataError(
                f"{where}: {reason}; fix or remove it, or pass predict.on_error=skip to leave "
                "such inputs out"
            )
        self.skipped.append(f"{where}: {reason}")


# --- tables --------------------------------------------------------------------------------
def read_csv_rows(path: Path, key: str = "input") -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of a headed CSV file, read as strictly as training reads its files."""
    from dlrun.data.csv_read import read_table as read_csv

    return read_csv(path, key)


def _require_columns(path: Path, columns: list[str], needed: list[str], what: str) -> None:
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DataError(
            f"input={path} lacks the {what} column(s) {missing} the model was trained on: give "
            f"a CSV with a header holding them (in any order; other columns are carried through)"
        )


def read_table(path: Path, prep: TablePreprocessing, on_error: str) -> Inputs:
    """Feature columns (CSV or Parquet) matched by name and encoded by the training run's fitted
    preprocessing; the target (when present) and every other column carried through as text."""
    from dlrun.data.csv_read import column_names, read_frame

    columns = column_names(path, "input")
    _require_columns(path, columns, prep.features, "feature")
    frame = read_frame(path, "input", text=[c for c in columns if c not in prep.features])
    return frame_inputs(frame, prep, str(path), on_error)


def frame_inputs(frame: Any, prep: TablePreprocessing, source: str, on_error: str) -> Inputs:
    """Rows of a DataFrame (a file's, or one given from Python), encoded as training encoded."""
    columns = [str(c) for c in frame.columns]
    inputs = Inputs("row", iter(()), len(frame))
    numbers, x = encode_rows(prep, frame, source, ErrorPolicy(on_error, inputs.skipped))
    kept = frame.iloc[[n - 1 for n in numbers]]

    def text(column: str) -> list[str]:
        return ["" if v is None or v != v else str(v) for v in kept[column].tolist()]

    chunk = Chunk(
        ids=[str(n) for n in numbers],
        tensors={"x": x},
        targets=text(prep.target) if prep.target in columns else None,
        extra={c: text(c) for c in columns if c not in prep.features},
    )
    inputs.chunks = iter([chunk])
    return inputs


def encode_rows(
    prep: TablePreprocessing, rows: Any, source: str, errors: ErrorPolicy
) -> tuple[list[int], Tensor]:
    """(1-based numbers of the rows kept, their encoded features) of a DataFrame or a list of
    dicts. All rows at once; when one is refused and errors are skipped, row by row to find and
    leave out the bad ones."""
    try:
        return list(range(1, len(rows) + 1)), prep.transform(rows, source)
    except DataError as err:
        if errors.fail:
            raise DataError(
                f"{err}; or pass predict.on_error=skip to leave such rows out"
            ) from None
    kept, parts = [], []
    for n in range(1, len(rows) + 1):
        row = rows.iloc[[n - 1]] if hasattr(rows, "iloc") else [rows[n - 1]]
        try:
            # a DataFrame's row keeps its index label (n - 1): rows from Python count from n
            parts.append(prep.transform(row, source, first_row=1 if hasattr(rows, "iloc") else n))
        except DataError as err:
            errors.skipped.append(str(err))
            continue
        kept.append(n)
    return kept, torch.cat(parts) if parts else torch.zeros(0, prep.width)


# --- text ----------------------------------------------------------------------------------
def read_text(path: Path, text: dict[str, Any]) -> tuple[str, list[str], Chunk]:
    """(id name, documents, a Chunk without tensors) from a CSV holding the training text columns
    (label column and others carried through), or a plain text file, one document a line."""
    if path.suffix.lower() != ".csv":
        try:
            lines = csv_file(path, "input").read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError as err:
            raise not_utf8(path, "input", err) from None
        numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
        if not numbered:
            raise DataError(f"input={path} holds no text: give one document a line")
        return "line", [d for _, d in numbered], Chunk([str(n) for n, _ in numbered], {})
    columns, rows = read_csv_rows(path)
    text_columns, label = text["text_columns"], text.get("label_column")
    _require_columns(path, columns, text_columns, "text")
    docs = [" ".join(r[c] or "" for c in text_columns) for r in rows]
    chunk = Chunk(
        ids=[str(n) for n in range(1, len(rows) + 1)],
        tensors={},
        targets=[r[label] for r in rows] if label in columns else None,
        extra={c: [r[c] or "" for r in rows] for c in columns if c not in text_columns},
    )
    return "row", docs, chunk


# --- images --------------------------------------------------------------------------------
def image_files(folder: Path) -> list[Path]:
    """Every image file under `folder` (recursively), in sorted order."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS
    )


def regular_input(path: Path) -> None:
    """input= is a regular file or a folder: a device (/dev/zero reads forever), a FIFO (hangs
    until someone writes) or a socket is refused in one line."""
    if not path.exists():
        raise DataError(f"input={path} does not exist: give the path of the inputs")
    if not (path.is_file() or path.is_dir()):
        raise DataError(
            f"input={path} is not a regular file or a folder (a device, pipe or socket): give a "
            "file (CSV, text, image, MNIST/CIFAR file) or a folder of images"
        )


def read_images(
    path: Path, images: dict[str, Any], class_names: list[str] | None, on_error: str, chunk: int
) -> Inputs:
    """One image, a folder of images (a sub-folder named after a class gives the true label),
    an MNIST-format idx images file or a CIFAR batch file."""
    if not path.exists():
        raise DataError(
            f"input={path} does not exist: give an image, a folder of images, or an "
            "MNIST/CIFAR-format file"
        )
    if path.is_dir():
        files = image_files(path)
        if not files:
            raise DataError(f"input={path} holds no image files (.png, .jpg, ...)")
        return _image_files(files, images, class_names, on_error, chunk)
    with path.open("rb") as f:  # the first bytes only: never the whole of a huge file
        head = f.read(4)
    if head == IDX_IMAGES_MAGIC:
        return _array_inputs(*_read_idx(path), images, class_names, chunk)
    if head[:1] == b"\x80":  # a pickle: CIFAR's python batches
        return _array_inputs(*_read_cifar(path), images, class_names, chunk)
    return _image_files([path], images, class_names, on_error, chunk)


def _pil_image(file: Path, channels: int) -> Any:
    """The image converted as training read it: RGB (ImageFolder's loader) or greyscale; a
    decompression bomb is a ValueError (dlrun/data/folder_load.py)."""
    from dlrun.data.folder_load import open_as

    return open_as(str(file), "RGB" if channels == 3 else "L")


def _image_files(
    files: list[Path],
    images: dict[str, Any],
    class_names: list[str] | None,
    on_error: str,
    chunk: int,
) -> Inputs:
    from dlrun.data.folder import resize_transform

    resize = resize_transform(*images["size"])
    inputs = Inputs("path", iter(()), len(files))
    errors = ErrorPolicy(on_error, inputs.skipped)

    def load(file: Path) -> Tensor | None:
        try:
            return resize(_pil_image(file, images["channels"]))
        except (OSError, ValueError, SyntaxError) as err:  # PIL: UnidentifiedImageError, truncation
            errors(
                f"image {file}",
                f"cannot be read ({str(err).splitlines()[0] or type(err).__name__})",
            )
            return None

    def chunks() -> Iterator[Chunk]:
        names = set(class_names or [])
        for start in range(0, len(files), chunk):
            loaded = [(f, load(f)) for f in files[start : start + chunk]]
            good = [(f, x) for f, x in loaded if x is not None]
            if not good:
                continue
            labels = [f.parent.name for f, _ in good]
            yield Chunk(
                ids=[str(f) for f, _ in good],
                tensors={"x": torch.stack([x for _, x in good])},
                targets=labels if names and all(n in names for n in labels) else None,
            )

    inputs.chunks = chunks()
    return inputs


def _array_inputs(
    x: Tensor,
    labels: list[int] | None,
    images: dict[str, Any],
    class_names: list[str] | None,
    chunk: int,
) -> Inputs:
    """Images already decoded (uint8 (N, C, H, W)), which must have the training shape."""
    shape, want = tuple(x.shape[1:]), (images["channels"], *images["size"])
    if shape != tuple(want):
        raise DataError(
            f"input holds {shape[1]}x{shape[2]} images with {shape[0]} channel(s), but the model "
            f"was trained on {want[1]}x{want[2]} with {want[0]}: "
            "give image files instead (they are "
            "resized and converted)"
        )
    names = class_names or []
    targets = [names[i] if i < len(names) else str(i) for i in labels] if labels else None

    def chunks() -> Iterator[Chunk]:
        for start in range(0, len(x), chunk):
            part = slice(start, start + chunk)
            yield Chunk(
                [str(i) for i in range(start, min(start + chunk, len(x)))],
                {"x": x[part]},
                targets[part] if targets else None,
            )

    return Inputs("index", chunks(), len(x))


def _read_idx(path: Path) -> tuple[Tensor, list[int] | None]:
    """An MNIST-format images file, and its labels file beside it when there is one."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    try:
        x = read_image_file(str(path))[:, None]
        labels_file = path.with_name(path.name.replace("images-idx3", "labels-idx1"))
        labels = None
        if labels_file != path and labels_file.is_file():
            labels = read_label_file(str(labels_file)).tolist()
    except (AssertionError, RuntimeError, ValueError, OSError) as err:
        raise DataError(f"input={path} is not a readable MNIST-format file ({err})") from None
    return x, labels if labels is not None and len(labels) == len(x) else None


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays, lists, dicts and strings only: a file never runs code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how a protocol-2 pickle written by Python 3 holds bytes
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a data file")
        return super().find_class(module, name)


def _read_cifar(path: Path) -> tuple[Tensor, list[int] | None]:
    """A CIFAR-10/100 python batch: (N, 3072) uint8 rows, channel-major, and its labels."""
    try:
        with path.open("rb") as f:
            entry = _ArraysOnly(f, encoding="latin1").load()
        x = torch.as_tensor(np.asarray(entry["data"], dtype=np.uint8)).reshape(-1, 3, 32, 32)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, RuntimeError) as err:
        raise DataError(f"input={path} is not a CIFAR batch file or an image ({err})") from None
    labels = entry.get("labels", entry.get("fine_labels"))
    return x, [int(v) for v in labels] if labels is not None else None


def read_image_list(files: list[Path], prep: dict[str, Any], on_error: str, chunk: int) -> Inputs:
    """Image files given one by one (the Python API's list of paths)."""
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise DataError(f"{missing[0]} is not a file: give paths of image files")
    return _image_files(files, prep["images"], prep.get("class_names"), on_error, chunk)


def array_layout(x: Tensor, prep: dict[str, Any]) -> Tensor:
    """An array from Python as training's raw layout: feature rows (N, F) of a table, or images
    (N, C, H, W) / (N, H, W[, C]) at the training size, uint8 0-255 or floats in [0, 1]."""
    shape = tuple(prep["input_shape"])
    if prep["kind"] != "images":
        raise DataError("a text model takes documents: give a list of strings or a text file")
    if x.ndim == 3 and shape[0] == 1:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1] != shape[0] and x.shape[-1] == shape[0]:
        x = x.permute(0, 3, 1, 2)
    if tuple(x.shape[1:]) != shape:
        raise DataError(
            f"the array holds images of shape {tuple(x.shape[1:])}; the model takes "
            f"{shape} (C, H, W): give image files to have them resized"
        )
    return x if x.dtype == torch.uint8 else x.float() * 255  # the transform divides by 255
