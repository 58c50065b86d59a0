"""A table's target column: which task it is (classification or regression) and its encoding.

Detection (data.task=auto): text labels are classes; numbers with fractions are a quantity;
whole numbers are classes when few distinct values stand for many rows (0/1, ratings 1..5),
else a quantity (prices, counts, the diabetes progression score).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from dlrun.data.table_prep import as_number, is_missing
from dlrun.errors import ConfigError, DataError

log = logging.getLogger("dlrun")

TASKS = ("auto", "classification", "regression")
MAX_INTEGER_CLASSES = 20  # whole-number targets with more distinct values are regression


def natural_key(label: str) -> tuple[int, float | str]:
    """Sort numeric labels numerically ('2' before '10'), others alphabetically."""
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)


@dataclass
class Labels:
    """A target column as its distinct values (text, as written) and each row's index into
    them: the checks below look at each distinct value once, and name a row only on refusal."""

    values: list[str]
    codes: np.ndarray
    path: str

    @classmethod
    def of(cls, column: Any, path: str) -> Labels:
        import pandas as pd

        text = np.array([v if isinstance(v, str) else "" for v in column], dtype=object)
        codes, uniques = pd.factorize(text)
        return cls([str(u) for u in uniques], codes.astype(np.int64), path)

    def __len__(self) -> int:
        return len(self.codes)

    def first_row(self, bad: set[int]) -> int:
        """The 1-based data row of the first value among the distinct values `bad`."""
        return int(np.flatnonzero(np.isin(self.codes, list(bad)))[0]) + 1


def detect_task(task: str, target: str, labels: list[Labels]) -> str:
    """The task for the target's values (data.task=auto), or `task` as given; the log says which
    and why."""
    if task not in TASKS:
        raise ConfigError(f"data.task={task!r} is invalid: use one of {list(TASKS)}")
    if task != "auto":
        log.info(f"data: target {target!r} is {task} (data.task={task})")
        return task
    rows = sum(len(f) for f in labels)
    values = {v for f in labels for v in f.values if not is_missing(v)}  # refused later
    numbers = {v: as_number(v) for v in sorted(values)}
    text = next((v for v, n in numbers.items() if n is None), None)
    distinct = len(set(numbers.values()))
    if text is not None:
        task, why = "classification", f"it holds text (e.g. {text!r})"
    elif any(not n.is_integer() for n in numbers.values()):
        task, why = "regression", "it holds numbers with fractions"
    elif distinct <= min(MAX_INTEGER_CLASSES, max(2, rows // 3)):
        task, why = "classification", f"{distinct} distinct whole numbers in {rows} rows"
    else:
        task, why = "regression", f"{distinct} distinct whole numbers in {rows} rows"
    other = "regression" if task == "classification" else "classification"
    log.info(f"data: target {target!r} read as {task}: {why} (data.task={other} overrides)")
    return task


def refuse_missing(target: str, labels: Labels) -> None:
    empty = {i for i, v in enumerate(labels.values) if is_missing(v) and not v.strip()}
    if empty:
        row = labels.first_row(empty)
        raise DataError(
            f"{labels.path} data row {row} has an empty {target!r}: fill or drop that row"
        )


def class_names(target: str, labels: list[Labels]) -> list[str]:
    """The distinct labels, sorted naturally; one class only is refused (nothing to learn)."""
    names = sorted({v for f in labels for v in f.values}, key=natural_key)
    rows = sum(len(f) for f in labels)
    if len(names) < 2:
        raise DataError(
            f"{labels[0].path}: target column {target!r} has one class only ({names[0]!r}): a "
            "classifier needs two or more; check data.target, or use data.task=regression for a "
            "quantity"
        )
    numeric = all(natural_key(c)[0] == 0 for c in names)
    if numeric and len(names) > max(50, rows // 2):
        raise DataError(
            f"data.target={target!r} has {len(names)} distinct numbers in {rows} rows: "
            "for a continuous target use data.task=regression"
        )
    return names


def numeric_target(target: str, labels: Labels) -> np.ndarray:
    """A regression target as floats, or one line naming the first value that is not one."""
    numbers = []
    for value in labels.values:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        numbers.append(number if number is not None and np.isfinite(number) else None)
    bad = {i for i, n in enumerate(numbers) if n is None}
    if bad:
        row = labels.first_row(bad)
        value = labels.values[labels.codes[row - 1]]
        fix = "fill or drop that row"
        if value.strip() and as_number(value) is None and not is_missing(value):
            fix = "use data.task=classification for a target of categories"
        raise DataError(f"{labels.path} data row {row} has {target}={value!r}, not a number: {fix}")
    return np.array(numbers, dtype=np.float32)[labels.codes]


def class_indices(labels: Labels, names: list[str]) -> np.ndarray:
    """Labels -> class numbers of `names` (a checkpoint's, on eval: a new label is refused)."""
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(labels.values) - set(index), key=natural_key)
    if unknown:
        raise DataError(
            f"{labels.path} has label(s) {unknown} that the checkpoint's model was not trained on "
            f"(it knows {names}): evaluate on data with those labels only"
        )
    lookup = np.array([index[v] for v in labels.values], dtype=np.int64)
    return lookup[labels.codes]
