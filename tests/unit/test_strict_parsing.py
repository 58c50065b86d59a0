"""Strict parsing: what csv.DictReader lets through silently is one line naming file, row, fix."""

import pytest
import torch

from dlrun import build
from dlrun.data.labelled_csv import read_rows
from dlrun.data.tabular import csv_table
from dlrun.errors import DataError
from tests.datasets import write_image_folder


def table(path):
    return csv_table(
        str(path), "y", "auto", test_fraction=0.2, split_seed=0, val_fraction=0.2, seed=0
    )


def text(path):
    return read_rows(path, ["text"], "y", "data.path")


GOOD = "".join(f"{i},{i % 2}\n" for i in range(30))

CASES = [
    (
        "a,a,y\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(30)),
        r"t.csv has duplicate column name\(s\) \['a'\] in its header: rename them",
    ),
    (
        "text,y\n" + GOOD.replace("4,0\n", "4,0,7\n"),
        r"t.csv data row 5 has 3 fields but the header has 2: fix that row",
    ),
    (
        "text,y\n" + GOOD.replace("4,0\n", "4\n"),
        r"t.csv data row 5 has 1 fields but the header has 2: fix that row",
    ),
    (
        "text,y\n" + GOOD + '31,"' + "x" * 140_000 + '"\n',
        r"t.csv line 3[12] cannot be read as CSV \(field larger than field limit \(131072\)\): "
        "check that line's quotes",
    ),
]


@pytest.mark.parametrize(
    "content,message", CASES, ids=["duplicate", "long row", "short row", "huge field"]
)
@pytest.mark.parametrize("reader", [table, text], ids=["table", "text_csv"])
def test_malformed_csv_is_one_line_naming_the_file_and_row(tmp_path, content, message, reader):
    path = tmp_path / "t.csv"
    path.write_text(content if reader is text else content.replace("text,", "a,"))
    with pytest.raises(DataError, match=message) as err:
        reader(path)
    assert "\n" not in str(err.value)


def test_an_image_folder_with_one_class_is_refused_for_a_classifier(compose, tmp_path):
    write_image_folder(tmp_path / "pics", ["cats"], per_class=10, size=12)
    cfg = compose(
        "model=cnn",
        "data=image_folder",
        f"data.path={tmp_path / 'pics'}",
        "data.num_workers=0",
        "data.image_size=16",
    )
    data = build.build_data(cfg.data, 0, task_needs_images=True)
    with pytest.raises(DataError, match=r"data.path=.*pics has one class only \(\['cats'\]\)"):
        build.build_task(cfg, data, torch.device("cpu"))
