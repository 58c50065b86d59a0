"""A table's preprocessing: fitted on the training split only, saved in the checkpoint as plain
values, re-used (never refitted) on eval/resume, and able to encode new rows for prediction."""

import csv
import logging

import numpy as np
import pytest
import torch

from dlrun import checkpoint
from dlrun.data.table_prep import UNKNOWN, TablePreprocessing
from dlrun.data.tabular import csv_table
from dlrun.errors import DataError


def write_csv(path, header, rows):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def house_rows(n, seed, shift=0.0):
    """area (number), city (text), price (a quantity in the thousands)."""
    rng = np.random.default_rng(seed)
    cities = ["oslo", "bergen", "tromso"]
    rows = []
    for i in range(n):
        area, city = rng.normal(80 + shift, 20), cities[i % 3]
        price = 3000 + 25 * area + {"oslo": 900, "bergen": 300, "tromso": 0}[city]
        rows.append([f"{area:.2f}", city, f"{price + rng.normal(0, 40):.1f}"])
    return rows


def table(path, task="auto", **kw):
    return csv_table(
        str(path), "price", task, test_fraction=0.2, split_seed=0, val_fraction=0.2, seed=0, **kw
    )


def test_preprocessing_is_fitted_on_the_training_split_and_typed_on_the_bundle(tmp_path):
    path = write_csv(tmp_path / "h.csv", ["area", "city", "price"], house_rows(200, 0))
    bundle = table(path)
    prep = bundle.preprocessing
    assert isinstance(prep, TablePreprocessing) and bundle.task == "regression"
    assert prep.features == ["area", "city"] and prep.categories == {
        "city": ["bergen", "oslo", "tromso"]
    }
    assert prep.encoded_names == [
        "area",
        "city=bergen",
        "city=oslo",
        "city=tromso",
        f"city={UNKNOWN}",
    ]
    assert bundle.input_shape == (prep.width,) == (5,)
    train_x = bundle.train.tensors["x"]
    assert abs(float(train_x[:, 0].mean())) < 1e-5  # the numeric column: train statistics
    assert float(bundle.test.tensors["x"][:, 0].mean()) != pytest.approx(0.0, abs=1e-5)
    # the model learns a standardised target; the preprocessing maps it back to prices
    y = bundle.train.tensors["y"]
    assert abs(float(y.mean())) < 1e-5 and float(y.std()) == pytest.approx(1.0, abs=1e-4)
    assert 4000 < float(prep.unscale_target(y).mean()) < 6000


def test_preprocessing_survives_a_weights_only_checkpoint_and_encodes_new_rows(tmp_path):
    path = write_csv(tmp_path / "h.csv", ["area", "city", "price"], house_rows(200, 0))
    prep = table(path).preprocessing
    checkpoint.save_atomic(
        {"format": checkpoint.FORMAT, "data_state": {"table": prep.to_state()}}, tmp_path / "c.pt"
    )
    back = TablePreprocessing.from_state(checkpoint.load(tmp_path / "c.pt")["data_state"]["table"])
    assert back == prep
    # a prediction file: columns in another order, no target, an unseen city
    new = write_csv(tmp_path / "new.csv", ["city", "area"], [["oslo", "80"], ["paris", "80"]])
    x = back.read_csv(new)
    assert x.shape == (2, 5) and x[0, 2] == 1 and x[1, 4] == 1  # oslo; paris -> unknown
    assert torch.equal(
        x, back.transform([{"area": 80, "city": "oslo"}, {"area": "80", "city": "paris"}])
    )


def test_eval_and_resume_reuse_the_saved_statistics_instead_of_refitting(tmp_path):
    path = tmp_path / "h.csv"
    write_csv(path, ["area", "city", "price"], house_rows(200, 0))
    saved = table(path).preprocessing.to_state()
    write_csv(path, ["area", "city", "price"], house_rows(200, 1, shift=500))  # the data drifted
    refitted = table(path).preprocessing
    reused = table(path, checkpoint_state={"table": saved}).preprocessing
    assert reused.to_state() == saved and refitted.mean != saved["mean"]


def test_bundle_checkpoint_state_holds_the_table(tmp_path):
    path = write_csv(tmp_path / "h.csv", ["area", "city", "price"], house_rows(60, 0))
    bundle = table(path)
    assert bundle.checkpoint_state()["table"]["target_mean"] == bundle.preprocessing.target_mean


@pytest.mark.parametrize(
    "targets,task,why",
    [
        (
            [str(v) for v in range(25, 125)] * 2,
            "regression",
            "100 distinct whole numbers in 200 rows",
        ),
        ([f"{v / 7:.3f}" for v in range(200)], "regression", "it holds numbers with fractions"),
        (["0", "1", "2"] * 60, "classification", "3 distinct whole numbers in 180 rows"),
        (["cat", "dog"] * 60, "classification", "it holds text (e.g. 'cat')"),
    ],
)
def test_task_is_detected_from_the_target_and_the_log_says_why(
    tmp_path, caplog, targets, task, why
):
    rows = [[f"{i % 17}", t] for i, t in enumerate(targets)]
    path = write_csv(tmp_path / "t.csv", ["a", "price"], rows)
    with caplog.at_level(logging.INFO, logger="dlrun"):
        assert table(path).task == task
    assert f"read as {task}: {why}" in caplog.text and "overrides" in caplog.text
    if targets[0] != "cat" and "fractions" not in why:  # whole numbers can be read either way
        other = "regression" if task == "classification" else "classification"
        assert table(path, task=other).task == other  # data.task overrides


def test_a_target_with_one_class_is_refused(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["a", "price"], [[str(i), "yes"] for i in range(30)])
    with pytest.raises(
        DataError, match=r"t.csv: target column 'price' has one class only \('yes'\)"
    ):
        table(path)


def _with_gaps(tmp_path):
    """Rows 1-40: x numeric with a gap at data row 5, colour text with a gap at row 7."""
    rows = [[f"{i}", ["red", "red", "blue"][i % 3], f"{i % 2}"] for i in range(40)]
    rows[4][0], rows[6][1] = "", "NA"
    return write_csv(tmp_path / "g.csv", ["x", "colour", "price"], rows)


def test_a_missing_value_is_refused_naming_file_row_and_column(tmp_path):
    path = _with_gaps(tmp_path)
    with pytest.raises(DataError, match=r"g.csv data row 5 has x='': .* data.impute=mean\|median"):
        table(path)


@pytest.mark.parametrize("how", ["mean", "median", "most_frequent"])
def test_impute_fills_gaps_with_training_statistics(tmp_path, how):
    path = _with_gaps(tmp_path)
    bundle = table(path, impute=how)
    prep = bundle.preprocessing
    assert prep.fill["colour"] == "red"  # categories: the most frequent one, whatever `how`
    # the training split's own values (a filled gap there adds the fill itself)
    train = bundle.train.tensors["x"][:, 0].double() * prep.std[0] + prep.mean[0]
    everything = np.array([float(r[0]) for r in _rows(path) if r[0]])
    if how == "mean":
        assert prep.fill["x"] == pytest.approx(float(train.mean()), abs=1e-4)
        assert prep.fill["x"] != pytest.approx(everything.mean(), abs=1e-3)  # not the whole file
    else:
        assert prep.fill["x"] in np.round(train.numpy(), 3).tolist() + [np.median(train.numpy())]
    filled = prep.transform([{"x": "", "colour": "NA"}])
    assert torch.equal(filled, prep.transform([{"x": prep.fill["x"], "colour": "red"}]))


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))[1:]


def test_a_numeric_column_named_in_categorical_is_one_hot(tmp_path):
    rows = [[f"{1000 + i % 4}", f"{i * 0.5}", f"{i % 2}"] for i in range(40)]
    path = write_csv(tmp_path / "z.csv", ["zip", "size", "price"], rows)
    prep = table(path, categorical=["zip"]).preprocessing
    assert prep.categories == {"zip": ["1000", "1001", "1002", "1003"]} and prep.width == 6
    assert "zip" not in table(path).preprocessing.categories
    with pytest.raises(DataError, match=r"data.categorical: \['nope'\] is not a feature column"):
        table(path, categorical=["nope"])
