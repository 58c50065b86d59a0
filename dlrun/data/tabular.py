"""Tabular datasets: sklearn's digits and synthetic makers, and the user's own CSV.

Features are standardised with statistics of the training split only (never val/test). Digits can
also be served as 1x8x8 images (pixels scaled to [0, 1], then normalised with the train split's
mean/std, recorded in facts["normalization"] as vision data does), for the generative models.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from dlrun.data.bundle import DataBundle, InMemorySplit, carve_validation
from dlrun.errors import DataError


def scale_features(x: torch.Tensor, stats: dict) -> torch.Tensor:
    """(x - mean) / std with the training split's statistics (`stats` as saved for prediction:
    {"mean": [...], "std": [...]}, float32 values, so new rows are scaled bit for bit alike)."""
    mean = torch.tensor(stats["mean"], dtype=torch.float32, device=x.device)
    std = torch.tensor(stats["std"], dtype=torch.float32, device=x.device)
    return (x.float() - mean) / std


def _standardise(*splits: InMemorySplit) -> dict[str, list[float]]:
    """Scale every split's x with the first split's per-feature mean/std (in place); returns them."""
    x = splits[0].tensors["x"]
    mean, std = x.mean(0), x.std(0)
    std[std == 0] = 1.0  # constant features (digits' blank corners) stay at 0
    stats = {"mean": mean.tolist(), "std": std.tolist()}
    for split in splits:
        split.tensors["x"] = scale_features(split.tensors["x"], stats)
    return stats


def _normalise_images(*splits: InMemorySplit) -> dict[str, list[float]]:
    """Normalise [0, 1] pixels with the first split's per-channel mean/std (in place).

    Returns the `normalization` fact: pixels = x * std + mean, per channel.
    """
    x = splits[0].tensors["x"]
    mean, std = x.mean((0, 2, 3)), x.std((0, 2, 3))
    for split in splits:
        split.tensors["x"] = (split.tensors["x"] - mean[:, None, None]) / std[:, None, None]
    return {"mean": mean.tolist(), "std": std.tolist()}


def _bundle_from_arrays(
    x: np.ndarray,
    y: np.ndarray,
    task: str,
    *,
    test_fraction: float,
    split_seed: int,
    val_fraction: float,
    seed: int,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    class_names: list[str] | None = None,
    image: tuple[tuple[int, int, int], float] | None = None,
    columns: tuple[list[str], str | None] | None = None,
) -> DataBundle:
    """Split, carve validation, scale. `image=(shape, pixel_max)` serves rows as images instead."""
    classify = task == "classification"
    if x_test is None:
        stratify = y if classify else None
        x, x_test, y, y_test = train_test_split(
            x, y, test_size=test_fraction, random_state=split_seed, stratify=stratify
        )

    def to_split(xs: np.ndarray, ys: np.ndarray) -> InMemorySplit:
        yt = torch.as_tensor(ys, dtype=torch.long if classify else torch.float32)
        if not classify and yt.ndim == 1:
            yt = yt[:, None]
        return InMemorySplit({"x": torch.as_tensor(xs, dtype=torch.float32), "y": yt})

    train, val = carve_validation(to_split(x, y), val_fraction, seed)
    test = to_split(x_test, y_test)
    facts = {}
    if image is None:
        # What a prediction on new rows needs (dlrun/predict): the columns by name and their
        # scaling. Kept apart until the typed table preprocessing (issue 18) replaces it.
        names, target = columns or ([f"x{i}" for i in range(x.shape[1])], None)
        facts["table"] = {
            "features": list(names),
            "target": target,
            **_standardise(train, val, test),
        }
    else:
        shape, pixel_max = image
        for split in (train, val, test):
            split.tensors["x"] = split.tensors["x"].reshape(-1, *shape) / pixel_max
        facts["normalization"] = _normalise_images(train, val, test)
    num_classes = int(max(y.max(), y_test.max())) + 1 if classify else None
    return DataBundle(
        train=train,
        val=val,
        test=test,
        task=task,
        input_shape=tuple(image[0]) if image else (x.shape[1],),
        num_classes=num_classes,
        num_targets=1 if classify or y.ndim == 1 else y.shape[1],
        class_names=class_names or ([str(i) for i in range(num_classes)] if classify else None),
        facts=facts,
    )


def digits(
    test_fraction: float,
    split_seed: int,
    val_fraction: float,
    seed: int,
    as_images: bool | None = None,
    task_needs_images: bool = False,
) -> DataBundle:
    """sklearn's bundled 8x8 handwritten digits (1,797 samples, 64 features, 10 classes).

    as_images: True = (1, 8, 8) images, False = 64 standardised features, None = images exactly
    when the model needs them (`task_needs_images`, filled in by build.py: an image model, or a
    task that needs images).
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    images = task_needs_images if as_images is None else as_images
    return _bundle_from_arrays(
        data.data, data.target, "classification",
        test_fraction=test_fraction, split_seed=split_seed, val_fraction=val_fraction, seed=seed,
        image=((1, 8, 8), 16.0) if images else None,  # digits' pixels are 0..16
        columns=(list(data.feature_names), "target"),
    )  # fmt: skip


def synthetic_classification(
    test_fraction: float, split_seed: int, val_fraction: float, seed: int, **make_kwargs: object
) -> DataBundle:
    """sklearn.datasets.make_classification; the table itself is drawn with `split_seed`."""
    from sklearn.datasets import make_classification

    x, y = make_classification(random_state=split_seed, **make_kwargs)
    return _bundle_from_arrays(
        x, y, "classification",
        test_fraction=test_fraction, split_seed=split_seed, val_fraction=val_fraction, seed=seed,
    )  # fmt: skip


def synthetic_regression(
    test_fraction: float, split_seed: int, val_fraction: float, seed: int, **make_kwargs: object
) -> DataBundle:
    """sklearn.datasets.make_regression; targets are standardised like the features."""
    from sklearn.datasets import make_regression

    x, y = make_regression(random_state=split_seed, **make_kwargs)
    y = (y - y.mean(0)) / y.std(0)  # unit-scale targets so default learning rates work
    return _bundle_from_arrays(
        x, y, "regression",
        test_fraction=test_fraction, split_seed=split_seed, val_fraction=val_fraction, seed=seed,
    )  # fmt: skip


def csv_file(path: str | Path, key: str) -> Path:
    """`path` as a Path, or a one-line DataError when it is a folder or does not exist."""
    file = Path(path)
    if file.is_dir():
        raise DataError(
            f"{key}={path} is a folder, not a file: give the path of a CSV file with a header row "
            f"(e.g. {key}={file / 'train.csv'})"
        )
    if not file.is_file():
        raise DataError(
            f"{key}={path} does not exist: give the path of a CSV file with a header row"
        )
    return file


def not_utf8(path: str | Path, key: str, err: UnicodeDecodeError) -> DataError:
    """The one-line error for a CSV file in another encoding than UTF-8."""
    return DataError(
        f"{key}={path} is not UTF-8 text (byte {err.object[err.start]:#x} at offset {err.start}): "
        "save it as UTF-8 (a spreadsheet's 'CSV UTF-8'), e.g. iconv -f latin1 -t utf-8"
    )


def _read_csv(
    path: str, target: str, key: str, features: list[str] | None = None
) -> tuple[np.ndarray, list[str], list[str]]:
    """Return (numeric feature matrix, raw target strings, feature names) from a headed CSV.

    `features` (the training file's feature names) picks the columns by name, so a test file may
    order its columns differently; without it, every column but `target` is a feature.
    """
    try:  # utf-8-sig: a spreadsheet's "CSV UTF-8" starts with a byte-order mark
        with csv_file(path, key).open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except UnicodeDecodeError as err:
        raise not_utf8(path, key, err) from None
    if not rows:
        raise DataError(f"{key}={path} has no data rows")
    columns = list(rows[0].keys())
    if features is None:
        if target not in columns:
            raise DataError(
                f"data.target={target!r} is not a column of {path}: choose one of {columns}"
            )
        features = [c for c in columns if c != target]
    else:
        _check_same_columns(path, key, columns, [*features, target])
    try:
        x = np.array([[float(r[c]) for c in features] for r in rows], dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise DataError(
            f"{path} has a non-numeric feature value ({err}): encode or drop that column"
        ) from None
    bad = np.argwhere(~np.isfinite(x))
    if len(bad):  # float() reads "nan" and "inf": they would turn every loss and metric to nan
        row, col = bad[0]
        raise DataError(
            f"{path} data row {row + 1} has {features[col]}={x[row, col]}: fill or drop the rows "
            "with missing or infinite values"
        )
    return x, [r[target] for r in rows], features


def _check_same_columns(path: str, key: str, columns: list[str], needed: list[str]) -> None:
    """A test file must hold every training column (features are then matched by name)."""
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DataError(
            f"{key}={path} lacks column(s) {missing} that data.path has: give it the same "
            "columns as the training file (in any order)"
        )


def csv_table(
    path: str,
    target: str,
    task: str,
    test_fraction: float,
    split_seed: int,
    val_fraction: float,
    seed: int,
    test_path: str | None = None,
) -> DataBundle:
    """The user's own CSV: every column but `target` is a numeric feature."""
    if task not in {"classification", "regression"}:
        raise DataError(f"data.task={task!r} is invalid: use classification or regression")
    x, y_raw, features = _read_csv(path, target, "data.path")
    x_test, y_test_raw = None, None
    if test_path:  # columns matched by the training header's names, not by position
        x_test, y_test_raw, _ = _read_csv(test_path, target, "data.test_path", features)
    class_names = None
    if task == "classification":
        class_names = sorted(set(y_raw) | set(y_test_raw or []), key=_natural_key)
        _refuse_a_continuous_target(target, class_names, len(y_raw))
        index = {name: i for i, name in enumerate(class_names)}
        y = np.array([index[v] for v in y_raw])
        y_test = np.array([index[v] for v in y_test_raw]) if y_test_raw else None
    else:
        y, y_test = (
            _numeric_target(target, values, file) if values else None
            for values, file in ((y_raw, path), (y_test_raw, test_path))
        )
    return _bundle_from_arrays(
        x, y, task,
        test_fraction=test_fraction, split_seed=split_seed, val_fraction=val_fraction, seed=seed,
        x_test=x_test, y_test=y_test, class_names=class_names, columns=(features, target),
    )  # fmt: skip


def _numeric_target(target: str, values: list[str], path: str | None) -> np.ndarray:
    """A regression target as floats, or one line naming the first value that is not one."""
    for row, value in enumerate(values, start=1):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        if number is None or not np.isfinite(number):
            fix = "fill or drop that row" if number is not None or not (value or "").strip() else (
                "use data.task=classification for a target of categories")  # fmt: skip
            raise DataError(f"{path} data row {row} has {target}={value!r}, not a number: {fix}")
    return np.array(values, dtype=np.float32)


def _refuse_a_continuous_target(target: str, class_names: list[str], rows: int) -> None:
    """A number target with a class per few rows is a regression target given as classes."""
    numeric = all(_natural_key(c)[0] == 0 for c in class_names)
    if numeric and len(class_names) > max(50, rows // 2):
        raise DataError(
            f"data.target={target!r} has {len(class_names)} distinct numbers in {rows} rows: "
            "for a continuous target use data.task=regression"
        )


def _natural_key(label: str) -> tuple[int, float | str]:
    """Sort numeric labels numerically ('2' before '10'), others alphabetically."""
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)
