"""A table's target column: which task it is (classification or regression) and its encoding.

Detection (data.task=auto): text labels are classes; numbers with fractions are a quantity;
whole numbers are classes when few distinct values stand for many rows (0/1, ratings 1..5),
else a quantity (prices, counts, the diabetes progression score).
"""

from __future__ import annotations

import logging

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


def detect_task(task: str, target: str, values: list[str]) -> str:
    """The task for `values` (data.task=auto), or `task` as given; the log says which and why."""
    if task not in TASKS:
        raise ConfigError(f"data.task={task!r} is invalid: use one of {list(TASKS)}")
    if task != "auto":
        log.info(f"data: target {target!r} is {task} (data.task={task})")
        return task
    values = [v for v in values if not is_missing(v)]  # refused later, naming their row
    numbers = [as_number(v) for v in values]
    text = next((v for v, n in zip(values, numbers, strict=True) if n is None), None)
    distinct = len(set(numbers))
    if text is not None:
        task, why = "classification", f"it holds text (e.g. {text!r})"
    elif any(not n.is_integer() for n in numbers):
        task, why = "regression", "it holds numbers with fractions"
    elif distinct <= min(MAX_INTEGER_CLASSES, max(2, len(values) // 3)):
        task, why = "classification", f"{distinct} distinct whole numbers in {len(values)} rows"
    else:
        task, why = "regression", f"{distinct} distinct whole numbers in {len(values)} rows"
    other = "regression" if task == "classification" else "classification"
    log.info(f"data: target {target!r} read as {task}: {why} (data.task={other} overrides)")
    return task


def refuse_missing(target: str, values: list[str], path: str) -> None:
    for row, value in enumerate(values, start=1):
        if is_missing(value) and not (value or "").strip():
            raise DataError(f"{path} data row {row} has an empty {target!r}: fill or drop that row")


def class_names(target: str, values: list[str], path: str) -> list[str]:
    """The distinct labels, sorted naturally; one class only is refused (nothing to learn)."""
    names = sorted(set(values), key=natural_key)
    if len(names) < 2:
        raise DataError(
            f"{path}: target column {target!r} has one class only ({names[0]!r}): a classifier "
            "needs two or more; check data.target, or use data.task=regression for a quantity"
        )
    numeric = all(natural_key(c)[0] == 0 for c in names)
    if numeric and len(names) > max(50, len(values) // 2):
        raise DataError(
            f"data.target={target!r} has {len(names)} distinct numbers in {len(values)} rows: "
            "for a continuous target use data.task=regression"
        )
    return names


def numeric_target(target: str, values: list[str], path: str | None) -> np.ndarray:
    """A regression target as floats, or one line naming the first value that is not one."""
    for row, value in enumerate(values, start=1):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        if number is None or not np.isfinite(number):
            fix = (
                "fill or drop that row"
                if number is not None or not (value or "").strip()
                else ("use data.task=classification for a target of categories")
            )
            raise DataError(f"{path} data row {row} has {target}={value!r}, not a number: {fix}")
    return np.array(values, dtype=np.float32)


def class_indices(values: list[str], names: list[str], path: str) -> np.ndarray:
    """Labels -> class numbers of `names` (a checkpoint's, on eval: a new label is refused)."""
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(values) - set(index), key=natural_key)
    if unknown:
        raise DataError(
            f"{path} has label(s) {unknown} that the checkpoint's model was not trained on "
            f"(it knows {names}): evaluate on data with those labels only"
        )
    return np.array([index[v] for v in values], dtype=np.int64)
