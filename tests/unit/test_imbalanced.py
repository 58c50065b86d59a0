"""Imbalanced classes: loss.class_weights (auto or a list), stratified splits, macro-F1 beside
accuracy in the sweep summary."""

import pytest
import torch

from dlrun import build
from dlrun.data.split import holdout
from dlrun.errors import ConfigError
from dlrun.summary import summarize
from tests.unit.test_summary import record
from tests.unit.test_table_prep import write_csv

CPU = torch.device("cpu")


def imbalanced_csv(tmp_path, n=200, rare_every=10):
    """Class 'rare' is 1 row in `rare_every`; feature a separates the classes."""
    rows = [
        [
            f"{(i % rare_every == 0) * 3 + (i % 7) / 7:.3f}",
            "rare" if i % rare_every == 0 else "common",
        ]
        for i in range(n)
    ]
    return write_csv(tmp_path / "imb.csv", ["a", "label"], rows)


def _task(compose, *overrides):
    cfg = compose(*overrides)
    data = build.build_data(cfg.data, 0)
    return data, build.build_task(cfg, data, CPU)


def test_class_weights_auto_is_inverse_frequency_of_the_training_split(compose, tmp_path):
    path = imbalanced_csv(tmp_path)
    data, task = _task(
        compose, "data=csv", f"data.path={path}", "data.target=label", "loss.class_weights=auto"
    )
    counts = torch.bincount(data.train.tensors["y"]).double()
    assert data.class_names == ["common", "rare"] and counts[1] < counts[0] / 5
    expected = counts.sum() / (2 * counts)
    assert torch.allclose(task.loss_fn.weight.double(), expected, rtol=1e-6)
    _, listed = _task(
        compose,
        "data=csv",
        f"data.path={path}",
        "data.target=label",
        "loss=cross_entropy",
        "loss.class_weights=[1,4]",
    )
    assert listed.loss_fn.weight.tolist() == [1.0, 4.0]
    _, binary = _task(
        compose,
        "data=csv",
        f"data.path={path}",
        "data.target=label",
        "loss=bce_with_logits",
        "loss.class_weights=[1,4]",
    )
    assert binary.loss_fn.pos_weight.tolist() == [4.0]


def test_class_weights_of_the_wrong_length_or_task_are_one_line(compose, tmp_path):
    path = imbalanced_csv(tmp_path)
    with pytest.raises(ConfigError, match=r"loss.class_weights has 3 values but the data has 2"):
        _task(
            compose,
            "data=csv",
            f"data.path={path}",
            "data.target=label",
            "loss.class_weights=[1,2,3]",
        )
    with pytest.raises(ConfigError, match=r"loss.class_weights is for classification"):
        _task(compose, "data=regression", "model=linear", "loss.class_weights=auto")


def test_stratified_splits_keep_the_class_ratios(compose, tmp_path):
    path = imbalanced_csv(tmp_path, n=300, rare_every=10)  # 30 rare rows, 10%
    data, _ = _task(compose, "data=csv", f"data.path={path}", "data.target=label")
    for split in (data.train, data.val, data.test):  # 10% rare, up to one row of rounding
        y = split.tensors["y"]
        assert abs(int(y.sum()) - 0.1 * len(y)) <= 1, (int(y.sum()), len(y))
    labels = torch.tensor([1 if i % 10 == 0 else 0 for i in range(300)])
    keep, held = holdout(300, 0.2, 0, labels)
    assert int(labels[held].sum()) == 6 and len(held) == 60 and len(keep) == 240
    assert sorted(torch.cat([keep, held]).tolist()) == list(range(300))  # a partition
    # off: a plain seeded shuffle (the same one carve_validation always used)
    assert torch.equal(
        holdout(300, 0.2, 0)[1],
        torch.randperm(300, generator=torch.Generator().manual_seed(0))[:60].sort().values,
    )


def test_summary_shows_macro_f1_beside_accuracy(tmp_path):
    record(
        tmp_path / "0",
        ["loss.class_weights=auto"],
        0.9,
        accuracy=0.88,
        precision_macro=0.7,
        recall_macro=0.8,
        f1_macro=0.75,
    )
    markdown = summarize(tmp_path).markdown
    header = next(line for line in markdown.splitlines() if line.startswith("| #"))
    assert "| test accuracy | test f1_macro | test precision_macro" in header
