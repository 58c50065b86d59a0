"""The fitted preprocessing of a table: what turns raw rows into the model's input, and back.

Everything here is fitted on the training split only and saved in every checkpoint (as plain
Python values, so `torch.load(weights_only=True)` reads it), so evaluation, resume and prediction
encode new rows exactly as training did.

Use it to predict on new rows (the `mode=predict` path)::

    from dlrun.data.table_prep import TablePreprocessing
    prep = TablePreprocessing.from_state(ckpt["data_state"]["table"])
    x = prep.read_csv("new.csv")              # (N, prep.width) float32; columns matched by name
    x = prep.transform([{"age": "41", "city": "Oslo"}])   # or rows as dicts (str or numbers)
    out = model(x)
    prep.decode_predictions(out)   # regression: values in the target's units, (N, targets)
                                   # classification: the class names (original label strings)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dlrun.errors import DataError

# Field values read as "missing" (case-insensitive, after stripping spaces).
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none"})
IMPUTE = ("mean", "median", "most_frequent")
UNKNOWN = "<unknown>"  # the one-hot slot of a category the training split did not have

Row = Mapping[str, Any]


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float | int) and not isinstance(value, bool):
        return not math.isfinite(value)
    text = str(value).strip()
    if text.lower() in MISSING:
        return True
    try:
        return not math.isfinite(float(text))  # "inf": as unusable as a gap
    except ValueError:
        return False


def as_number(value: Any) -> float | None:
    """A field as a float, or None when it is not a number (missing fields included)."""
    if is_missing(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def category(value: Any) -> str:
    """A categorical field's key: its text, stripped ("3" and 3 are the same category)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


@dataclass
class TablePreprocessing:
    """Fitted on the training split; turns raw rows into the model's (N, width) float32 input.

    features: the raw input columns in model order (matched by name in a CSV).
    categories: categorical column -> its training categories; one-hot, plus a last UNKNOWN slot
      that unseen categories map to.
    mean/std: per numeric feature (features not in `categories`), in `features` order.
    fill: column -> the value that replaces a missing field (only with `impute`).
    task: classification | regression. target: the target column's name.
    target_mean/target_std: regression targets are standardised with these (per target column).
    class_names: classification labels as strings, in class-index order.
    """

    features: list[str]
    mean: list[float]
    std: list[float]
    categories: dict[str, list[str]] = field(default_factory=dict)
    impute: str | None = None
    fill: dict[str, float | str] = field(default_factory=dict)
    task: str = "classification"
    target: str | None = None
    target_mean: list[float] | None = None
    target_std: list[float] | None = None
    class_names: list[str] | None = None

    # --- fitting ----------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        rows: Sequence[Row],
        features: list[str],
        categorical: Sequence[str] = (),
        impute: str | None = None,
    ) -> TablePreprocessing:
        """Fit on training rows: a column is categorical when listed in `categorical` or when a
        present value is not a number. Target fields are set by the caller (`fit_target`)."""
        if impute is not None and impute not in IMPUTE:
            raise DataError(f"data.impute={impute!r} is invalid: use one of {list(IMPUTE)} or null")
        cats, fill, mean, std = {}, {}, [], []
        for col in features:
            values = [r.get(col) for r in rows]
            present = [v for v in values if not is_missing(v)]
            numbers = [as_number(v) for v in present]
            if col in categorical or any(n is None for n in numbers):
                counts = Counter(category(v) for v in present)
                cats[col] = sorted(counts)
                if impute:  # a category has no mean: the most frequent one fills the gaps
                    fill[col] = counts.most_common(1)[0][0] if counts else UNKNOWN
                continue
            arr = np.array(numbers, dtype=np.float64)
            if impute and len(arr):
                fill[col] = _statistic(arr, impute)
            mu, sd = (float(arr.mean()), float(arr.std(ddof=1))) if len(arr) > 1 else (0.0, 0.0)
            mean.append(mu)
            std.append(sd if sd > 0 else 1.0)  # a constant column stays at 0
        return cls(list(features), mean, std, cats, impute, fill)

    @classmethod
    def fit_array(cls, x: np.ndarray, names: list[str] | None = None) -> TablePreprocessing:
        """Numeric features only (sklearn's bundled tables): per-column mean and std."""
        x = np.asarray(x, dtype=np.float64)
        std = x.std(0, ddof=1) if len(x) > 1 else np.zeros(x.shape[1])
        names = names or [f"x{i}" for i in range(x.shape[1])]
        return cls(names, x.mean(0).tolist(), np.where(std > 0, std, 1.0).tolist())

    def fit_target(self, y: Tensor) -> None:
        """Regression: remember the training targets' mean/std (per column) to scale them."""
        y = y.double().reshape(len(y), -1)
        std = y.std(0) if len(y) > 1 else torch.ones(y.shape[1], dtype=torch.float64)
        self.target_mean = y.mean(0).tolist()
        self.target_std = torch.where(std > 0, std, torch.ones_like(std)).tolist()

    # --- the model's input ------------------------------------------------------------------
    @property
    def width(self) -> int:
        """Columns of the model's input: one per numeric feature, categories + 1 per categorical."""
        return sum(
            len(self.categories[f]) + 1 if f in self.categories else 1 for f in self.features
        )

    @property
    def encoded_names(self) -> list[str]:
        """A name for each input column: `col` or `col=category` (`col=<unknown>`)."""
        names: list[str] = []
        for f in self.features:
            cats = self.categories.get(f)
            names += [f"{f}={c}" for c in [*cats, UNKNOWN]] if cats is not None else [f]
        return names

    def transform(self, rows: Sequence[Row], source: str = "the rows") -> Tensor:
        """Raw rows (dicts keyed by column name; str or number values) -> (N, width) float32.

        A missing field is filled (`impute`) or refused with a DataError naming `source`, the
        row (1-based) and the column; so is text in a numeric column."""
        columns, numeric = [], 0
        for f in self.features:
            values = [self._field(r, f, i, source) for i, r in enumerate(rows, start=1)]
            if f in self.categories:
                columns.append(_one_hot(values, self.categories[f]))
                continue
            arr = np.array(values, dtype=np.float64)
            columns.append(((arr - self.mean[numeric]) / self.std[numeric])[:, None])
            numeric += 1
        if not columns or not len(rows):
            return torch.zeros(len(rows), self.width)
        return torch.from_numpy(np.concatenate(columns, axis=1).astype(np.float32))

    def transform_array(self, x: np.ndarray) -> Tensor:
        """A numeric (N, features) array -> standardised (N, features) float32."""
        if self.categories:
            raise ValueError("transform_array takes numeric tables only: use transform(rows)")
        scaled = (np.asarray(x, dtype=np.float64) - np.array(self.mean)) / np.array(self.std)
        return torch.from_numpy(scaled.astype(np.float32))

    def read_csv(self, path: str | Path, key: str = "data.path") -> Tensor:
        """A CSV with a header row holding (at least) the training features, by name."""
        from dlrun.data.csv_read import read_table

        columns, rows = read_table(path, key)
        missing = [f for f in self.features if f not in columns]
        if missing:
            raise DataError(
                f"{key}={path} lacks column(s) {missing} that the model was trained on: give "
                "it the training file's feature columns (in any order)"
            )
        return self.transform(rows, str(path))

    def _field(self, row: Row, col: str, number: int, source: str) -> float | str:
        value = row.get(col)
        if is_missing(value):
            if col in self.fill:
                return self.fill[col]
            how = f"set data.impute={'|'.join(IMPUTE)}" if not self.impute else "fill it"
            shown = value if str(value).strip() else repr(value)
            raise DataError(
                f"{source} data row {number} has {col}={shown}: fill or drop the rows with "
                f"missing or infinite values, or {how}"
            )
        if col in self.categories:
            return category(value)
        number_value = as_number(value)
        if number_value is None:
            raise DataError(
                f"{source} data row {number} has {col}={value!r}, not a number: fix it, or "
                f"train with data.categorical=[{col}] to treat {col} as categories"
            )
        return number_value

    # --- targets ----------------------------------------------------------------------------
    def scale_target(self, y: Tensor) -> Tensor:
        """Regression targets in their own units -> the standardised values the model learns."""
        if self.target_mean is None:
            return y
        return (y - _row(self.target_mean, y)) / _row(self.target_std, y)

    def unscale_target(self, y: Tensor) -> Tensor:
        """Model outputs (standardised) -> the target's own units."""
        if self.target_mean is None:
            return y
        return y * _row(self.target_std, y) + _row(self.target_mean, y)

    def decode_predictions(self, out: Tensor) -> list[str] | Tensor:
        """Model outputs -> class names (classification) or target values (regression)."""
        if self.task == "classification":
            index = (out.squeeze(1) > 0).long() if out.shape[1] == 1 else out.argmax(1)
            names = self.class_names or [str(i) for i in range(int(index.max()) + 1)]
            return [names[i] for i in index.tolist()]
        return self.unscale_target(out.detach().float())

    # --- saving -----------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """Plain lists, floats and strings: safe for a weights_only checkpoint and for JSON."""
        return asdict(self)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> TablePreprocessing:
        return cls(**{k: (dict(v) if isinstance(v, Mapping) else v) for k, v in state.items()})


def _statistic(values: np.ndarray, how: str) -> float:
    if how == "mean":
        return float(values.mean())
    if how == "median":
        return float(np.median(values))
    uniq, counts = np.unique(values, return_counts=True)
    return float(uniq[counts.argmax()])  # ties: the smallest value


def _one_hot(values: list[Any], categories: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(categories)}
    codes = np.array([index.get(v, len(categories)) for v in values], dtype=np.int64)
    out = np.zeros((len(values), len(categories) + 1), dtype=np.float64)
    out[np.arange(len(values)), codes] = 1.0
    return out


def _row(values: list[float] | None, like: Tensor) -> Tensor:
    row = torch.tensor(values, dtype=like.dtype, device=like.device)
    return row.reshape(1, -1) if like.ndim > 1 else row
