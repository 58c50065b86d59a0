"""Which columns a table's model sees: identifiers left out, data.features / data.drop, rare
levels of a many-level category pooled, and K-fold splits (data.cv)."""

import logging

import numpy as np
import pandas as pd
import pytest
import torch

from dlrun.data.tabular import csv_table
from dlrun.errors import DataError


def people(n=120, seed=0):
    """patient_id and name unique per row; age and city real features; sick the target."""
    rng = np.random.default_rng(seed)
    age = rng.normal(50, 10, n).round(1)
    cities = np.array([f"town{i}" for i in range(30)])[rng.integers(0, 30, n) ** 1]
    return pd.DataFrame(
        {
            "patient_id": np.arange(1000, 1000 + n),
            "name": [f"person {i}" for i in range(n)],
            "age": age,
            "visits": rng.integers(0, 5, n),
            "city": cities,
            "sick": (age + rng.normal(0, 5, n) > 50).astype(int),
        }
    )


def table(path, **kw):
    return csv_table(
        str(path), "sick", "auto", test_fraction=0.2, split_seed=0, val_fraction=0.2, seed=0, **kw
    )


def test_identifier_columns_are_left_out_with_a_log_line(tmp_path, caplog):
    path = tmp_path / "p.csv"
    people().to_csv(path, index=False)
    with caplog.at_level(logging.INFO, logger="dlrun"):
        prep = table(path).preprocessing
    assert prep.features == ["age", "visits", "city"]
    assert "left out patient_id, name" in caplog.text
    # listed in data.features, an identifier is kept; data.drop leaves a real feature out
    kept = table(path, features=["patient_id", "age"]).preprocessing
    assert kept.features == ["patient_id", "age"] and not kept.categories
    assert table(path, drop=["visits"]).preprocessing.features == ["age", "city"]


@pytest.mark.parametrize(
    "kw,message",
    [
        ({"features": ["nope"]}, r"data.features: \['nope'\] is not a column of the file"),
        ({"drop": ["nope"]}, r"data.drop: \['nope'\] is not a column"),
        ({"features": ["age"], "drop": ["age"]}, r"no feature column is left"),
    ],
)
def test_unknown_or_empty_column_choices_are_one_line(tmp_path, kw, message):
    path = tmp_path / "p.csv"
    people().to_csv(path, index=False)
    with pytest.raises(DataError, match=message):
        table(path, **kw)


def test_a_category_with_many_levels_keeps_the_most_frequent_plus_other(tmp_path, caplog):
    frame = people(400)
    counts = np.r_[np.full(200, 0), np.full(100, 1), np.arange(2, 102)]  # town0, town1, 100 rare
    frame["city"] = [f"town{i}" for i in counts]
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    with caplog.at_level(logging.INFO, logger="dlrun"):
        bundle = table(path, max_levels=2)
    prep = bundle.preprocessing
    assert prep.categories["city"] == ["town0", "town1"] and prep.width == 2 + 3
    assert "the 2 most frequent are kept, the rest share one 'other' slot" in caplog.text
    x = prep.transform(
        pd.DataFrame({"age": [50.0] * 3, "visits": [1] * 3, "city": ["town0", "town77", "paris"]})
    )
    assert x[:, 2:].tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 1]]  # rare and unseen: other


def test_cv_folds_hold_out_every_row_once_keeping_class_ratios(tmp_path):
    path = tmp_path / "p.csv"
    frame = people(150)
    frame.to_csv(path, index=False)
    seen = []
    for fold in range(3):
        bundle = table(path, cv=3, fold=fold)
        test = bundle.test.tensors["y"]
        assert len(test) == 50 and len(bundle.train) + len(bundle.val) == 100
        assert abs(float(test.float().mean()) - frame.sick.mean()) < 0.03  # stratified
        prep = bundle.preprocessing  # each fold fits its own scaling
        seen.append(bundle.test.tensors["x"][:, 0].double() * prep.std[0] + prep.mean[0])
    ages = np.sort(torch.cat(seen).numpy().round(1))  # each row tested exactly once
    assert np.array_equal(ages, np.sort(frame.age.to_numpy()))
    with pytest.raises(Exception, match=r"data.fold=3 is invalid: use 0 to 2"):
        table(path, cv=3, fold=3)


def test_preprocessing_matches_scikit_learns_column_transformer(tmp_path):
    """The saved plain values reproduce what the fitted sklearn transformers compute."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = people(200).drop(columns=["patient_id", "name", "sick"])
    path = tmp_path / "p.csv"
    people(200).to_csv(path, index=False)
    from dlrun.data.table_prep import TablePreprocessing

    prep = TablePreprocessing.fit(frame, ["age", "visits", "city"])
    reference = ColumnTransformer(
        [
            ("n", StandardScaler(), ["age", "visits"]),
            ("c", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["city"]),
        ]
    ).fit_transform(frame)
    ours = prep.transform(frame).numpy()
    other = ours[:, -1]  # the other/unseen slot: empty on the training rows
    assert np.allclose(ours[:, :-1], reference, atol=1e-5) and not other.any()


def test_a_very_wide_file_reads_as_pyarrow_reads_it_and_stays_strict(tmp_path):
    from dlrun.data import csv_read

    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(csv_read.WIDE)] + ["target"]
    rows = [[f"{v:.3f}" for v in rng.normal(size=csv_read.WIDE)] + [str(i % 2)] for i in range(30)]
    path = tmp_path / "wide.csv"
    path.write_text("\n".join(",".join(r) for r in [names, *rows]) + "\n")
    wide = csv_read.read_frame(path, "data.path", text=["target"])
    table = csv_read._read_arrow_csv(path, "data.path", names, None, ["target"])
    arrow = csv_read._frame(table, ["target"])
    assert list(wide.columns) == names == list(arrow.columns)
    assert np.array_equal(wide[names[:-1]].to_numpy(), arrow[names[:-1]].to_numpy())
    assert wide["target"].tolist() == arrow["target"].tolist()
    rows[4] = rows[4][:-1]  # a short row: the strict reader's one line
    path.write_text("\n".join(",".join(r) for r in [names, *rows]) + "\n")
    with pytest.raises(DataError, match=r"data row 5 has 2000 fields but the header has 2001"):
        csv_read.read_frame(path, "data.path", text=["target"])
