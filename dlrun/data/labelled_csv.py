"""The user's labelled text: CSV files with a header row, text columns and a label column.

Labels may be numbers or strings; classes are numbered in natural order ('2' before '10', then
strings alphabetically) over the train and test files together.
"""

from __future__ import annotations

from pathlib import Path

from dlrun.data import corpus as cache
from dlrun.data.csv_read import read_table
from dlrun.data.target import natural_key as _natural_key
from dlrun.data.tokenize import Tokenizer
from dlrun.errors import DataError


def read_rows(
    path: Path, text_columns: list[str], label_column: str, key: str
) -> list[tuple[str, str]]:
    """(text columns joined by a space, label) for every row of a CSV with a header row."""
    columns, table = read_table(path, key)  # strict: duplicate names, ragged rows are refused
    for name, col in [("data.label_column", label_column)] + [
        ("data.text_columns", c) for c in text_columns
    ]:
        if col not in columns:
            raise DataError(f"{name}: {col!r} is not a column of {path}: its columns are {columns}")
    rows = [(" ".join(r[c] for c in text_columns), r[label_column]) for r in table]
    for n, (_, label) in enumerate(rows, start=1):
        if not label.strip():
            raise DataError(
                f"{path} data row {n} has an empty {label_column!r}: fill or drop that row"
            )
    return rows


def corpus(
    paths: dict[str, Path], text_columns: list[str], label_column: str, tokenize: Tokenizer
) -> cache.Corpus:
    """Read, label-index and tokenise the train (and test) CSV; labels sorted naturally."""
    raw = {
        split: read_rows(
            p, text_columns, label_column, f"data.{'path' if split == 'train' else 'test_path'}"
        )
        for split, p in paths.items()
    }
    class_names = sorted({label for rows in raw.values() for _, label in rows}, key=_natural_key)
    if len(class_names) < 2:
        raise DataError(
            f"{paths['train']}: data.label_column={label_column!r} has one class only "
            f"({class_names}): a classifier needs two or more; check data.label_column"
        )
    index = {name: i for i, name in enumerate(class_names)}
    rows = {split: [(text, index[label]) for text, label in r] for split, r in raw.items()}
    return cache.tokenize_splits(rows, tokenize, class_names)
