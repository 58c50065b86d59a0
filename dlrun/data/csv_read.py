"""Strict reading of a CSV file with a header row: every problem is one line naming the file,
the row and the fix (Python's csv.DictReader drops a duplicate column, pads a short row with None
and files a long row's extra fields under the key None, all silently)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

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
    counts = Counter(names)  # not names.count per name: 50,000 columns would take minutes
    duplicates = sorted(n for n, c in counts.items() if c > 1)
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


# --- the fast reader: pyarrow, with the strict reader above explaining any refusal ------------
# Text read as a missing value (every case of table_prep.MISSING but "nan", which pyarrow reads
# as a float NaN in a numeric column itself and which stays text in a text column).
_NULLS = ["", "na", "n/a", "null", "none"]
NULL_TEXT = sorted({v for n in _NULLS for v in (n, n.upper(), n.title(), n.capitalize())})
FIELD_LIMIT = 131_072  # csv.field_size_limit(): a longer field is almost always an unclosed quote


def header(path: str | Path, key: str) -> list[str]:
    """The header row of a CSV (duplicates refused), read without reading the rest."""
    try:
        with csv_file(path, key).open(newline="", encoding="utf-8-sig") as f:
            return _header(next(csv.reader(f), None), path, key)
    except UnicodeDecodeError as err:
        raise not_utf8(path, key, err) from None


def is_parquet(path: str | Path) -> bool:
    return Path(path).suffix.lower() in (".parquet", ".pq")


def column_names(path: str | Path, key: str) -> list[str]:
    """A table file's column names: a CSV's header row, a Parquet file's schema."""
    if not is_parquet(path):
        return header(path, key)
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(csv_file(path, key)).names)
    except (pa.ArrowException, OSError) as err:
        raise DataError(
            f"{key}={path} is not a readable Parquet file ({str(err).splitlines()[0]})"
        ) from None


def read_frame(
    path: str | Path, key: str, columns: list[str] | None = None, text: list[str] = ()
) -> Any:
    """A table file (CSV with a header row, or Parquet) as a pandas DataFrame: numeric columns
    float64, other columns text (str or None when missing). `columns` reads only those, `text`
    keeps those as text (a target's labels as written). A CSV is read by pyarrow; whatever it
    refuses (or lets through that the strict reader refuses) is explained by `read_table`."""
    file = csv_file(path, key)
    if is_parquet(file):
        return _released(_frame(_read_parquet(file, key, columns), text))
    names = header(file, key)
    if len(names) >= WIDE and columns is None:
        wide = _read_wide_csv(file, key, names, text)
        if wide is not None:
            return wide
    table = _read_arrow_csv(file, key, names, columns, text)
    if table.num_rows == 0:
        raise DataError(f"{key}={path} has no data rows")
    frame = _frame(table, text)
    del table
    return _released(frame)


def _released(frame: Any) -> Any:
    """`frame`, once pyarrow's memory pool has handed back the pages freed by the parse: mimalloc
    keeps them otherwise (the 200,000 x 22 file: ~75 MB held through preprocessing, which made
    the load's peak 2.05x of the frame + float32 matrix instead of ~1.6x)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    return frame


def _read_arrow_csv(
    file: Path, key: str, names: list[str], columns: list[str] | None, text: list[str]
) -> Any:
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    convert = pa_csv.ConvertOptions(
        null_values=NULL_TEXT,
        strings_can_be_null=True,
        true_values=[],  # "true"/"false" stay text: categories, as the strict reader has them
        false_values=[],
        timestamp_parsers=[],
        include_columns=columns,
        column_types={c: pa.string() for c in text if c in names},
    )
    parse = pa_csv.ParseOptions(newlines_in_values=True)
    try:
        table = pa_csv.read_csv(file, parse_options=parse, convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowKeyError) as err:
        _explain(file, key, f"cannot be read as CSV ({str(err).splitlines()[0]})")
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_binary(column.type):  # bytes that are not UTF-8
            _explain(file, key, f"column {name!r} is not UTF-8 text")
        if pa.types.is_string(column.type) and len(column):
            import pyarrow.compute as pc

            longest = pc.max(pc.utf8_length(column)).as_py()
            if longest is not None and longest > FIELD_LIMIT:
                _explain(file, key, f"column {name!r} holds a field over {FIELD_LIMIT} characters")
    return table


WIDE = 2_000  # columns from which a file without quotes is split in Python, not by pyarrow


def _read_wide_csv(file: Path, key: str, names: list[str], text: list[str]) -> Any:
    """A very wide file without quote characters (50,000 columns x 20 rows): split on commas
    and parsed as one matrix, where pyarrow spends seconds per thousand columns on its
    per-column set-up. None (pyarrow reads it) when the file has quotes or text columns."""
    import pandas as pd

    data = file.read_bytes()
    if b'"' in data or len(data) > 256 * 2**20:
        return None
    try:
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        return None  # pyarrow's path explains it
    rows = [line.split(",") for line in lines[1:] if line]
    if not rows:
        raise DataError(f"{key}={file} has no data rows")
    if any(len(r) != len(names) for r in rows):
        _explain(file, key, "has a row whose field count differs from the header")
    keep = [i for i, n in enumerate(names) if n not in text]
    cells = np.array(rows, dtype=object)
    try:
        block = cells[:, keep].astype(np.float64)  # "", NA, text: not one plain matrix
    except ValueError:
        return None
    frame = pd.DataFrame(block, columns=[names[i] for i in keep], copy=False)
    kept = set(keep)
    extra = {names[i]: _text_column(cells[:, i]) for i in range(len(names)) if i not in kept}
    if extra:
        frame = pd.concat([frame, pd.DataFrame(extra)], axis=1)[[str(n) for n in names]]
    return frame


def _text_column(values: np.ndarray) -> np.ndarray:
    return np.array([None if v.strip() in NULL_TEXT else v for v in values], dtype=object)


def _explain(file: Path, key: str, fallback: str) -> None:
    """The strict reader's one line for what pyarrow refused; `fallback` where it finds none."""
    read_table(file, key)
    raise DataError(f"{key}={file} {fallback}: check the file (its quotes and field counts)")


def _read_parquet(file: Path, key: str, columns: list[str] | None) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(file, columns=columns)
    except (pa.ArrowException, OSError) as err:
        raise DataError(
            f"{key}={file} is not a readable Parquet file ({str(err).splitlines()[0]})"
        ) from None
    duplicates = sorted(n for n, c in Counter(table.column_names).items() if c > 1)
    if duplicates:
        raise DataError(f"{file} has duplicate column name(s) {duplicates}: rename them")
    if table.num_rows == 0:
        raise DataError(f"{key}={file} has no data rows")
    return table


def _frame(table: Any, text: list[str]) -> Any:
    """pyarrow table -> DataFrame: numbers as float64, everything else as text (object). The
    numeric columns are copied into one 2-D block: a frame of 50,000 one-column blocks makes
    every pandas selection walk them all."""
    import pandas as pd
    import pyarrow as pa

    numeric, texts = [], {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if name not in text and (
            pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)
        ):
            numeric.append((name, column))
            continue
        if not pa.types.is_string(kind) and not pa.types.is_large_string(kind):
            column = column.cast(pa.string())
        # pandas' arrow-backed text: a tenth of the memory of Python strings in an object array
        texts[name] = pd.Series(pd.arrays.ArrowStringArray(column.combine_chunks()))
    block = np.empty((table.num_rows, len(numeric)), dtype=np.float64)
    for j, (_, column) in enumerate(numeric):  # an all-missing (null) column reads as NaN
        block[:, j] = column.to_numpy(zero_copy_only=False) if len(column) else []
    frame = pd.DataFrame(block, columns=[n for n, _ in numeric], copy=False)
    if texts:
        frame = pd.concat([frame, pd.DataFrame(texts)], axis=1)
    order = [str(c) for c in table.column_names]
    return frame if list(frame.columns) == order else frame[order]
