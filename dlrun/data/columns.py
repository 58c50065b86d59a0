"""Which columns of a table are the model's features: data.features (keep only these),
data.drop (leave these out), and identifier columns (a value unique to every row: ids, names),
which are left out by default with a log line, since a model can learn nothing general from them.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np

from dlrun.errors import DataError

log = logging.getLogger("dlrun")

# A whole-number column is an identifier only when it is unique per row AND named like one
# (patient_id, PassengerId, id): a unique count or price in whole units is a real feature.
_ID_NAME = re.compile(r"(^|[_\W])id$|^id([_\W]|$)|[a-z]Id$|ID$", re.IGNORECASE)


def _as_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _check_known(names: list[str], columns: list[str], key: str, target: str) -> None:
    unknown = [c for c in names if c not in columns]
    if unknown:
        raise DataError(f"{key}: {unknown} is not a column of the file: choose among {columns}")
    if target in names and key == "data.features":
        raise DataError(f"data.features lists the target {target!r}: leave it out (data.target)")


def feature_columns(
    frame: Any,
    target: str,
    features: Any = None,
    drop: Any = None,
    categorical: list[str] = (),
) -> list[str]:
    """The feature columns in file order (data.features' order when given)."""
    columns = [str(c) for c in frame.columns]
    chosen, dropped = _as_list(features), _as_list(drop) or []
    _check_known(dropped, columns, "data.drop", target)
    if chosen is not None:
        _check_known(chosen, columns, "data.features", target)
        kept = [c for c in chosen if c not in dropped]
    else:
        gone = {target, *dropped}
        rest = [c for c in columns if c not in gone]
        numeric = {str(c) for c, t in frame.dtypes.items() if t.kind in "biuf"}
        ids = [c for c in rest if c not in categorical and is_identifier(frame, c, c in numeric)]
        if ids:
            shown = ", ".join(ids)
            log.info(
                f"data: left out {shown}: a value unique to every row (an id or a name) teaches "
                f"nothing general; data.features=[...] listing it keeps it"
            )
        kept = [c for c in rest if c not in ids]
    if not kept:
        raise DataError(
            f"no feature column is left besides the target {target!r}: check data.features and "
            "data.drop"
        )
    return kept


def is_identifier(frame: Any, name: str, numeric: bool) -> bool:
    """Text unique to every row, or whole numbers unique to every row in a column named like an
    id. Tiny tables (under 20 rows) keep every column."""
    n = len(frame)
    if n < 20:
        return False
    if numeric:
        if not _ID_NAME.search(str(name)):  # the name first: a wide table's columns stay unread
            return False
        column = frame[name]
        values = column.to_numpy(np.float64)
        return bool(np.isfinite(values).all() and (values == np.floor(values)).all()) and (
            column.nunique() == n
        )
    return frame[name].nunique(dropna=False) == n  # text: names, codes, free-form ids
