"""The user's own CSV table: one-line refusals."""

import pytest

from dlrun.data.tabular import csv_table
from dlrun.errors import DataError


def build(path, test_path=None):
    return csv_table(path, "label", "classification", test_fraction=0.2, split_seed=0,
                     val_fraction=0.2, seed=0, test_path=test_path)  # fmt: skip


def test_a_folder_is_not_a_csv_file(tmp_path):
    with pytest.raises(DataError, match=f"data.path={tmp_path} is a folder, not a file: .*CSV"):
        build(str(tmp_path))
