"""The user's own CSV table: test-file columns matched by name, one-line refusals."""

import csv

import pytest
import torch

from dlrun.data.tabular import csv_table
from dlrun.errors import DataError

COLUMNS = ["a", "b", "c", "label"]


def write_table(path, columns, n, seed):
    """A CSV of `n` rows whose feature values differ per column (a: ~0, b: ~10, c: ~-5)."""
    g = torch.Generator().manual_seed(seed)
    centre = {"a": 0.0, "b": 10.0, "c": -5.0}
    rows = [
        {**{k: float(centre[k] + torch.randn(1, generator=g)) for k in centre}, "label": i % 2}
        for i in range(n)
    ]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: r[k] for k in columns} for r in rows)
    return str(path)


def build(path, test_path=None):
    return csv_table(
        path,
        "label",
        "classification",
        test_fraction=0.2,
        split_seed=0,
        val_fraction=0.2,
        seed=0,
        test_path=test_path,
    )


def test_test_file_columns_are_matched_by_name(tmp_path):
    train = write_table(tmp_path / "train.csv", COLUMNS, n=40, seed=0)
    same = build(train, write_table(tmp_path / "same.csv", COLUMNS, n=10, seed=1))
    shuffled = ["c", "label", "a", "b"]
    other = build(train, write_table(tmp_path / "shuffled.csv", shuffled, n=10, seed=1))
    assert torch.equal(same.test.tensors["x"], other.test.tensors["x"])
    assert torch.equal(same.test.tensors["y"], other.test.tensors["y"])


@pytest.mark.parametrize(
    "columns,missing",
    [
        (["a", "c", "label"], "['b']"),
        (["c", "a", "b"], "['label']"),
        (["b", "label"], "['a', 'c']"),
    ],
)
def test_test_file_without_a_training_column_is_one_line(tmp_path, columns, missing):
    train = write_table(tmp_path / "train.csv", COLUMNS, n=40, seed=0)
    test = write_table(tmp_path / "test.csv", columns, n=10, seed=1)
    with pytest.raises(DataError) as err:
        build(train, test)
    message = str(err.value)
    assert f"data.test_path={test} lacks column(s) {missing}" in message and "\n" not in message


def test_a_folder_is_not_a_csv_file(tmp_path):
    with pytest.raises(DataError, match=f"data.path={tmp_path} is a folder, not a file: .*CSV"):
        build(str(tmp_path))


def test_spreadsheet_utf8_with_a_byte_order_mark_reads_and_latin1_is_one_line(tmp_path):
    from pathlib import Path

    from dlrun.data.labelled_csv import read_rows

    plain = Path(write_table(tmp_path / "plain.csv", COLUMNS, 40, seed=0))
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())  # what "CSV UTF-8" export writes
    assert torch.equal(build(str(bom)).train.tensors["x"], build(str(plain)).train.tensors["x"])
    text = tmp_path / "text.csv"
    text.write_bytes(b"\xef\xbb\xbftext,label\nnice,pos\n")
    assert read_rows(text, ["text"], "label", "data.path") == [("nice", "pos")]
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("text,label\ncaf\u00e9,pos\n".encode("latin-1"))
    for read in (
        lambda: build(str(latin1)),
        lambda: read_rows(latin1, ["text"], "label", "data.path"),
    ):
        with pytest.raises(DataError, match=r"latin1.csv is not UTF-8 text .* save it as UTF-8"):
            read()


def _regression_csv(path, targets, first_feature="0.5"):
    """Columns a (feature: first_feature, 1.5, 2.5, ...) and y (targets)."""
    rows = [f"{first_feature if i == 0 else f'{i}.5'},{t}\n" for i, t in enumerate(targets)]
    path.write_text("a,y\n" + "".join(rows))
    return str(path)


@pytest.mark.parametrize(
    "cell,message",
    [
        ("nan", r"data row 2 has y='nan', not a number: fill or drop"),
        ("", r"data row 2 has y='', not a number: fill or drop"),
        ("big", r"data row 2 has y='big', not a number: use data.task=classification"),
    ],
)
def test_regression_target_that_is_not_a_number_is_one_line(tmp_path, cell, message):
    path = _regression_csv(tmp_path / "r.csv", ["1.5", cell] + [str(i) for i in range(20)])
    with pytest.raises(DataError, match=message):
        csv_table(
            path, "y", "regression", test_fraction=0.2, split_seed=0, val_fraction=0.2, seed=0
        )


def test_missing_feature_value_is_one_line(tmp_path):
    path = _regression_csv(tmp_path / "r.csv", [str(i) for i in range(20)], first_feature="nan")
    with pytest.raises(DataError, match=r"data row 1 has a=nan: fill or drop"):
        csv_table(
            path, "y", "regression", test_fraction=0.2, split_seed=0, val_fraction=0.2, seed=0
        )


def test_continuous_target_read_as_classes_suggests_regression(tmp_path):
    path = _regression_csv(tmp_path / "r.csv", [f"{i * 0.37:.2f}" for i in range(120)])
    with pytest.raises(
        DataError, match=r"120 distinct numbers in 120 rows: .* data.task=regression"
    ):
        csv_table(
            path, "y", "classification", test_fraction=0.2, split_seed=0, val_fraction=0.2, seed=0
        )


def _auto(path, task="classification"):
    return csv_table(path, "label", task, 0.2, 0, "auto", 0)


def test_val_fraction_auto_gives_a_small_table_a_fifth_and_picks_by_loss_under_100_rows(tmp_path):
    small = _auto(write_table(tmp_path / "s.csv", COLUMNS, n=250, seed=0))  # 200 left: 40 val
    assert len(small.val) == 40 and small.monitor == "loss"
    big = _auto(write_table(tmp_path / "b.csv", COLUMNS, n=1500, seed=0))  # 1,200 left: 120 val
    assert len(big.val) == 120 and big.monitor is None
    typed = build(write_table(tmp_path / "t.csv", COLUMNS, n=250, seed=0))  # 0.2 of 200, as typed
    assert len(typed.val) == 40 and typed.monitor == "loss"
    regression = _auto(str(tmp_path / "s.csv"), "regression")  # its default monitor is the loss
    assert regression.monitor is None
