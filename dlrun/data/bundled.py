"""scikit-learn's bundled digits table, read straight from the file sklearn ships.

`import sklearn` pulls in scipy.stats (~1.9 s on a 2-core machine) before a single row is read;
the table itself is a 1,797 x 65 gzipped CSV that numpy reads in milliseconds. The file is found
without importing sklearn; if a future sklearn moves it, its own loader is used instead.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np


def _sklearn_data_file(name: str) -> Path | None:
    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "datasets" / "data" / name
        if path.is_file():
            return path
    return None


# sklearn's names for the 64 pixel columns (row, column), as load_digits().feature_names has them
DIGITS_FEATURES = [f"pixel_{row}_{col}" for row in range(8) for col in range(8)]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """(x, y): 1,797 flattened 8x8 images with pixels 0..16 (float64), labels 0..9 (int); fresh
    copies of the table, which is parsed once per process (a sweep's jobs in one process, the
    Python API: ~20 ms each)."""
    x, y = _digits_table()
    return x.copy(), y.copy()


@functools.cache
def _digits_table() -> tuple[np.ndarray, np.ndarray]:
    path = _sklearn_data_file("digits.csv.gz")
    if path is None:
        from sklearn.datasets import load_digits as sklearn_load_digits

        bunch = sklearn_load_digits()
        return bunch.data, bunch.target
    table = np.loadtxt(path, delimiter=",")  # the last column is the label
    return table[:, :-1], table[:, -1].astype(int)
