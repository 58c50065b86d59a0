"""Tabular datasets: sklearn's digits and synthetic makers, and the user's own CSV.

Features are standardised with statistics of the training split only (never val/test), and so
are regression targets (metrics are reported back in the target's units); the fitted
preprocessing is `DataBundle.preprocessing` (dlrun/data/table_prep.py), saved in checkpoints.
Digits can also be served as 1x8x8 images (pixels scaled to [0, 1], then normalised with the
train split's mean/std, recorded in DataBundle.images as vision data does), for the
generative models.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dlrun.data.bundle import DataBundle, ImageFacts, InMemorySplit
from dlrun.data.bundled import DIGITS_FEATURES, load_digits
from dlrun.data.columns import feature_columns
from dlrun.data.csv_read import csv_file, not_utf8, read_frame
from dlrun.data.split import holdout, kfold
from dlrun.data.table_prep import DEFAULT_MAX_LEVELS, TablePreprocessing
from dlrun.data.target import (
    Labels,
    class_indices,
    class_names,
    detect_task,
    natural_key,
    numeric_target,
    refuse_missing,
)
from dlrun.errors import ConfigError, DataError
from dlrun.schema import TABLE_STEPS

log = logging.getLogger("dlrun")

# Older names, imported by the text data modules.
_natural_key = natural_key
__all__ = ["csv_file", "not_utf8", "csv_table", "digits"]


def _normalise_images(*splits: InMemorySplit) -> ImageFacts:
    """Normalise [0, 1] pixels with the first split's per-channel mean/std (in place).

    Returns the bundle's image facts: pixels = x * std + mean, per channel.
    """
    x = splits[0].tensors["x"]
    mean, std = x.mean((0, 2, 3)), x.std((0, 2, 3))
    for split in splits:
        split.tensors["x"] = (split.tensors["x"] - mean[:, None, None]) / std[:, None, None]
    return ImageFacts(mean.tolist(), std.tolist())


def _bundle_from_arrays(
    x: np.ndarray,
    y: np.ndarray,
    task: str,
    *,
    test_fraction: float,
    split_seed: int,
    val_fraction: float,
    seed: int,
    image: tuple[tuple[int, int, int], float] | None = None,
    names: list[str] | None = None,
) -> DataBundle:
    """Split, carve validation, scale. `image=(shape, pixel_max)` serves rows as images instead;
    `names` are the feature columns' names (a CSV of new rows for prediction is read by them)."""
    classify = task == "classification"
    kept, held = holdout(
        len(x), test_fraction, split_seed, torch.as_tensor(y) if classify else None
    )
    x, x_test, y, y_test = x[kept.numpy()], x[held.numpy()], y[kept.numpy()], y[held.numpy()]
    labels = torch.as_tensor(y) if classify else None
    train_index, val_index = _carve(torch.arange(len(x)), val_fraction, seed, labels)
    yt, y_test = torch.as_tensor(y), torch.as_tensor(y_test)
    if image is not None:
        shape, pixel_max = image
        splits = [
            InMemorySplit(
                {
                    "x": torch.as_tensor(a, dtype=torch.float32).reshape(-1, *shape) / pixel_max,
                    "y": b,
                }
            )
            for a, b in (
                (x[train_index], yt[train_index]),
                (x[val_index], yt[val_index]),
                (x_test, y_test),
            )
        ]
        normalization = _normalise_images(*splits)
        n = int(max(y.max(), y_test.max())) + 1
        return DataBundle(
            *splits,
            task=task,
            input_shape=tuple(shape),
            num_classes=n,
            class_names=[str(i) for i in range(n)],
            images=normalization,
        )
    return _fitted_table(task, names, (x, yt), (x_test, y_test), train_index, val_index)


def _fitted_table(
    task: str,
    names: list[str] | None,
    rows: tuple[np.ndarray, Tensor],
    test_rows: tuple[np.ndarray, Tensor],
    train_index: Tensor,
    val_index: Tensor,
) -> DataBundle:
    """A table's preprocessing fitted on the training rows only, then every split encoded."""
    (x, y), (x_test, y_test) = rows, test_rows
    prep = TablePreprocessing.fit_array(x[train_index.numpy()], names)
    prep.task = task
    if task == "classification":
        prep.class_names = [str(i) for i in range(int(max(y.max(), y_test.max())) + 1)]
    else:
        prep.fit_target(y[train_index].float().reshape(len(train_index), -1))
    xs, x_test = prep.transform_array(x), prep.transform_array(x_test)
    return _table_bundle(
        prep, (xs[train_index], y[train_index]), (xs[val_index], y[val_index]), (x_test, y_test)
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
    x, y = load_digits()
    images = task_needs_images if as_images is None else as_images
    return _bundle_from_arrays(
        x,
        y,
        "classification",
        test_fraction=test_fraction,
        split_seed=split_seed,
        val_fraction=val_fraction,
        seed=seed,
        image=((1, 8, 8), 16.0) if images else None,  # digits' pixels are 0..16
        names=DIGITS_FEATURES,
    )


def synthetic_classification(
    test_fraction: float, split_seed: int, val_fraction: float, seed: int, **make_kwargs: object
) -> DataBundle:
    """sklearn.datasets.make_classification; the table itself is drawn with `split_seed`."""
    from sklearn.datasets import make_classification

    x, y = make_classification(random_state=split_seed, **make_kwargs)
    return _bundle_from_arrays(
        x,
        y,
        "classification",
        test_fraction=test_fraction,
        split_seed=split_seed,
        val_fraction=val_fraction,
        seed=seed,
    )


def synthetic_regression(
    test_fraction: float, split_seed: int, val_fraction: float, seed: int, **make_kwargs: object
) -> DataBundle:
    """sklearn.datasets.make_regression; targets are scaled with the training split's mean/std
    for training, and metrics are reported in their own units."""
    from sklearn.datasets import make_regression

    x, y = make_regression(random_state=split_seed, **make_kwargs)
    return _bundle_from_arrays(
        x,
        y,
        "regression",
        test_fraction=test_fraction,
        split_seed=split_seed,
        val_fraction=val_fraction,
        seed=seed,
    )


def _check_same_columns(path: str, key: str, columns: list[str], needed: list[str]) -> None:
    """A test file must hold every training column (features are then matched by name)."""
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DataError(
            f"{key}={path} lacks column(s) {missing} that data.path has: give it the same "
            "columns as the training file (in any order)"
        )


def _check_categorical(categorical: list[str], features: list[str], target: str) -> list[str]:
    categorical = [categorical] if isinstance(categorical, str) else list(categorical or [])
    unknown = [c for c in categorical if c not in features]
    if unknown:
        what = "the target" if unknown == [target] else "not a feature column"
        raise DataError(f"data.categorical: {unknown} is {what}: choose among {features}")
    return categorical


def _encode_target(
    task: str, target: str, files: list[Labels], saved: TablePreprocessing | None
) -> tuple[list[np.ndarray], list[str] | None]:
    """Each file's targets as class numbers or floats, and the class names (classification)."""
    if task == "regression":
        return [numeric_target(target, labels) for labels in files], None
    for labels in files:
        refuse_missing(target, labels)
    names = (saved.class_names if saved else None) or class_names(target, files)
    return [class_indices(labels, names) for labels in files], names


def _read(path: str, key: str, target: str, needed: list[str] | None = None) -> tuple[Any, Labels]:
    """(the table as a DataFrame, the target's values as text) from a CSV or Parquet file;
    `needed` (the training columns) must all be there (a test file's order may differ)."""
    frame = read_frame(path, key, text=[target])
    columns = [str(c) for c in frame.columns]
    if needed is not None:
        _check_same_columns(path, key, columns, [*needed, target])
    elif target not in columns:
        raise DataError(
            f"data.target={target!r} is not a column of {path}: choose one of {columns}"
        )
    return frame, Labels.of(frame[target].to_numpy(dtype=object), path)


def _held_out(
    n: int, labels: Tensor | None, test_fraction: float, split_seed: int, cv: int | None, fold: int
) -> tuple[Tensor, Tensor]:
    """(rows to train and validate on, test rows): a hold-out, or fold `fold` of data.cv."""
    if cv is None:
        return holdout(n, test_fraction, split_seed, labels)
    if not isinstance(cv, int) or cv < 2 or cv > n:
        raise ConfigError(f"data.cv={cv} is invalid: use a number of folds from 2 to {n}, or null")
    if not isinstance(fold, int) or not 0 <= fold < cv:
        raise ConfigError(f"data.fold={fold} is invalid: use 0 to {cv - 1} (one run per fold)")
    return kfold(n, cv, fold, split_seed, labels)


def csv_table(
    path: str,
    target: str,
    task: str,
    test_fraction: float,
    split_seed: int,
    val_fraction: float | str,
    seed: int,
    test_path: str | None = None,
    categorical: list[str] | None = None,
    impute: str | None = None,
    stratify: bool = True,
    features: list[str] | None = None,
    drop: list[str] | None = None,
    max_levels: int | None = DEFAULT_MAX_LEVELS,
    cv: int | None = None,
    fold: int = 0,
    checkpoint_state: dict | None = None,
) -> DataBundle:
    """The user's own table (CSV or Parquet): read by pyarrow, preprocessed by scikit-learn's
    transformers fitted on the training split (or taken from `checkpoint_state` on eval/resume,
    so data is encoded as training did). Every column but `target` is a feature unless
    `features`/`drop` say otherwise; identifier columns are left out (dlrun/data/columns.py)."""
    saved = None
    if checkpoint_state and "table" in checkpoint_state:
        saved = TablePreprocessing.from_state(checkpoint_state["table"])
    frame, y_raw = _read(path, "data.path", target, saved and saved.features)
    categorical = [categorical] if isinstance(categorical, str) else list(categorical or [])
    names = saved.features if saved else feature_columns(frame, target, features, drop, categorical)
    categorical = _check_categorical(categorical, names, target)
    test_frame, y_test_raw = None, None
    if test_path:  # columns matched by the training header's names, not by position
        if cv is not None:
            raise ConfigError("data.cv folds the data.path file: leave data.test_path out")
        test_frame, y_test_raw = _read(test_path, "data.test_path", target, names)
    files = [y_raw] + ([y_test_raw] if y_test_raw is not None else [])
    task = saved.task if saved else detect_task(task, target, files)
    ys, classes = _encode_target(task, target, files, saved)
    labels = torch.as_tensor(ys[0]) if task == "classification" and stratify else None
    index, test_index = torch.arange(len(frame)), None
    if not test_path:
        index, test_index = _held_out(len(frame), labels, test_fraction, split_seed, cv, fold)
    train_index, val_index = _carve(index, val_fraction, seed, labels)
    prep = saved or _fit(frame, train_index, names, categorical, impute, max_levels)
    prep.task, prep.target, prep.class_names = task, target, classes
    y = torch.as_tensor(ys[0])
    if task == "regression" and saved is None:
        prep.fit_target(y[train_index])

    # each split encoded from its own rows (row numbers in messages are the file's): the full
    # encoded table and its split copies are never held at once
    train, val = (_encoded(prep, frame, y, i, path) for i in (train_index, val_index))
    if test_path:
        test = (prep.transform(test_frame, test_path), torch.as_tensor(ys[1]))
    else:
        test = _encoded(prep, frame, y, test_index, path)
    del frame
    bundle = _table_bundle(prep, train, val, test)
    given = {"path": path, "test_path": test_path}
    bundle.location = {k: str(Path(v).resolve()) for k, v in given.items() if v}
    return bundle


def _encoded(
    prep: TablePreprocessing, frame: Any, y: Tensor, index: Tensor, path: str
) -> tuple[Tensor, Tensor]:
    """The rows `index` of the table, encoded, and their targets."""
    return prep.transform(frame.iloc[index.numpy()], path), y[index]


# data.val_fraction=auto: a tenth of the rows left after the test split, but a fifth where that
# is under SMALL_TABLE rows: a validation split of 12-35 rows (iris, diabetes) picked the best
# epoch on noise (one row moves accuracy by 3-8 points).
SMALL_TABLE = 1000
# Under this many validation rows a classifier's best epoch is chosen by validation loss, not
# accuracy (trainer.monitor=auto): on 12 rows accuracy moves in steps of 8 points.
SMALL_VAL = 100


def _val_fraction(fraction: float | str, rows: int) -> float:
    """data.val_fraction decided for `rows` training + validation rows."""
    if fraction != "auto":
        return float(fraction)
    return 0.2 if rows < SMALL_TABLE else 0.1


def _carve(
    index: Tensor, fraction: float | str, seed: int, labels: Tensor | None
) -> tuple[Tensor, Tensor]:
    """(train, val) out of `index`, decided by the run's seed, stratified when `labels` is given."""
    n = len(index)
    fraction = _val_fraction(fraction, n)
    if max(1, int(round(n * fraction))) >= n:
        raise ConfigError(
            f"data.val_fraction={fraction} leaves no training samples out of {n}: lower it"
        )
    keep, held = holdout(n, fraction, seed, None if labels is None else labels[index])
    return index[keep], index[held]


def _fit(
    frame: Any,
    train_index: Tensor,
    features: list[str],
    categorical: list[str],
    impute: str | None,
    max_levels: int | None,
) -> TablePreprocessing:
    train = frame.iloc[train_index.numpy()]
    prep = TablePreprocessing.fit(train, features, categorical, impute, max_levels)
    if prep.categories:
        shown = ", ".join(f"{c} ({len(v)})" for c, v in prep.categories.items())
        log.info(f"data: one-hot categorical column(s) {shown} (+1 other/unseen slot each)")
    for col, levels in prep.categories.items():
        total = train[col].nunique()
        if max_levels is not None and total > len(levels):
            log.info(
                f"data: {col} has {total} levels in the training split: the {len(levels)} most "
                f"frequent are kept, the rest share one 'other' slot (data.max_levels={max_levels})"
            )
    return prep


def _table_bundle(prep: TablePreprocessing, *splits: tuple[Tensor, Tensor]) -> DataBundle:
    """The bundle of a table whose rows are already encoded; regression targets are scaled."""
    classify = prep.task == "classification"
    parts = []
    for x, y in splits:
        y = y.long() if classify else prep.scale_target(y.float().reshape(len(y), -1))
        parts.append(InMemorySplit({"x": x, "y": y}))
    small = classify and len(parts[1]) < SMALL_VAL
    return DataBundle(
        train=parts[0],
        val=parts[1],
        test=parts[2],
        min_steps=TABLE_STEPS,
        monitor="loss" if small else None,
        task=prep.task,
        input_shape=(prep.width,),
        num_classes=len(prep.class_names) if classify else None,
        num_targets=1 if classify else parts[0].tensors["y"].shape[1],
        class_names=prep.class_names,
        preprocessing=prep,
    )
