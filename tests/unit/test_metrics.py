"""dlrun's on-device metrics agree with sklearn.metrics on the same predictions."""

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from dlrun.tasks.metrics import classification_metrics, regression_metrics


@pytest.mark.parametrize("num_classes,n,seed", [(10, 500, 0), (3, 50, 1), (5, 7, 2), (2, 100, 3)])
def test_classification_metrics_match_sklearn(num_classes, n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, n)
    # mostly right, some wrong, so every metric is away from 0 and 1
    pred = np.where(rng.random(n) < 0.7, y, rng.integers(0, num_classes, n))
    got = classification_metrics(torch.tensor(pred), torch.tensor(y), num_classes)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    for ours, avg_fn in [
        ("f1_macro", skm.f1_score),
        ("precision_macro", skm.precision_score),
        ("recall_macro", skm.recall_score),
    ]:
        assert got[ours] == pytest.approx(avg_fn(y, pred, average="macro", zero_division=0)), ours
    assert (
        got["confusion_matrix"]
        == skm.confusion_matrix(y, pred, labels=list(range(num_classes))).tolist()
    )


def test_class_never_predicted_counts_as_zero_precision_like_sklearn():
    y = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 0, 0, 1, 1, 1])  # class 2 is never predicted
    got = classification_metrics(torch.tensor(pred), torch.tensor(y), 3)
    assert got["precision_macro"] == pytest.approx(
        skm.precision_score(y, pred, average="macro", zero_division=0)
    )
    assert got["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0))


@pytest.mark.parametrize("targets", [1, 3])
def test_regression_metrics_match_sklearn(targets):
    rng = np.random.default_rng(targets)
    y = rng.normal(size=(200, targets))
    pred = y + rng.normal(scale=0.5, size=y.shape)
    got = regression_metrics(torch.tensor(pred), torch.tensor(y))
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert got["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred))
    assert got["r2"] == pytest.approx(skm.r2_score(y, pred))
