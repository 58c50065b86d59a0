"""Strict reading of a CSV file with a header row: every problem is one line naming the file,
the row and the fix (Python's csv.DictReader drops a duplicate column, pads a short row with None
and files a long row's extra fields under the key None, all silently)."""

from __future__ import annotations

import csv
from pathlib import Path

from dlrun.errors import DataError


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


def read_table(path: str | Path, key: str) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows as dicts) of a headed CSV, refusing what csv.DictReader would let through."""
    try:  # utf-8-sig: a spreadsheet's "CSV UTF-8" starts with a byte-order mark
        with csv_file(path, key).open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = _header(next(reader, None), path, key)
            rows = [
                _row(fields, header, path, n) for n, fields in enumerate(reader, start=1) if fields
            ]  # a blank line is no row, as for DictReader
    except UnicodeDecodeError as err:
        raise not_utf8(path, key, err) from None
    except csv.Error as err:  # a field over csv.field_size_limit, a NUL byte...
        raise DataError(
            f"{path} line {reader.line_num} cannot be read as CSV ({err}): check that line's "
            "quotes; a field over the limit is often an unclosed quote"
        ) from None
    if not rows:
        raise DataError(f"{key}={path} has no data rows")
    return header, rows


def _header(header: list[str] | None, path: str | Path, key: str) -> list[str]:
    if not header:
        raise DataError(f"{key}={path} is empty: it needs a header row naming the columns")
    names = [h.strip() for h in header]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataError(
            f"{path} has duplicate column name(s) {duplicates} in its header: rename them so "
            "each column has its own name"
        )
    return names


def _row(fields: list[str], header: list[str], path: str | Path, number: int) -> dict[str, str]:
    if len(fields) != len(header):
        raise DataError(
            f"{path} data row {number} has {len(fields)} fields but the header has "
            f"{len(header)}: fix that row (a comma inside a value needs quotes)"
        )
    return dict(zip(header, fields, strict=True))
