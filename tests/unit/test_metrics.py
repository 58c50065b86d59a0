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


def _scores(rng, y, num_classes, ties=False):
    """Class probabilities that lean to the true class, so the ranking metrics are away from 0.5
    and 1; `ties` rounds them so that many scores tie."""
    logits = rng.normal(size=(len(y), num_classes))
    logits[np.arange(len(y)), y] += 1.5
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return np.round(p, 1) if ties else p


@pytest.mark.parametrize(
    "num_classes,n,seed,ties", [(10, 500, 0, False), (3, 60, 1, False), (2, 100, 2, False),
                                (10, 300, 3, True), (6, 40, 4, True)],
)  # fmt: skip
def test_ranking_metrics_match_sklearn(num_classes, n, seed, ties):
    from dlrun.tasks.metrics import ranking_metrics, top_k_accuracy

    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(num_classes), rng.integers(0, num_classes, n - num_classes)])
    p = _scores(rng, y, num_classes, ties)
    got = ranking_metrics(torch.tensor(p), torch.tensor(y))
    onehot = np.eye(num_classes)[y]
    # one-vs-rest: sklearn's binary AUROC of each class, averaged (what multi_class="ovr" does;
    # it refuses rounded scores that no longer sum to 1, hence the explicit mean)
    want_auc = np.mean([skm.roc_auc_score(y == c, p[:, c]) for c in range(num_classes)])
    assert got["auroc_macro"] == pytest.approx(want_auc)
    if num_classes > 2 and not ties:
        assert want_auc == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"))
    want_ap = skm.average_precision_score(onehot, p, average="macro")
    assert got["average_precision_macro"] == pytest.approx(want_ap)
    if num_classes > 5:
        want_top5 = skm.top_k_accuracy_score(y, p, k=5, labels=list(range(num_classes)))
        assert top_k_accuracy(torch.tensor(p), torch.tensor(y), 5) == pytest.approx(want_top5)


def test_per_class_precision_recall_f1_match_sklearn():
    from dlrun.tasks.metrics import per_class

    rng = np.random.default_rng(5)
    y = rng.integers(0, 4, 200)
    pred = np.where(rng.random(200) < 0.6, y, rng.integers(0, 4, 200))
    pred[pred == 3] = 2  # class 3 is never predicted: precision 0, as sklearn's zero_division=0
    got = per_class(torch.tensor(pred), torch.tensor(y), ["a", "b", "c", "d"])
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y, pred, labels=[0, 1, 2, 3], zero_division=0
    )
    for i, name in enumerate("abcd"):
        assert got[name]["precision"] == pytest.approx(precision[i])
        assert got[name]["recall"] == pytest.approx(recall[i])
        assert got[name]["f1"] == pytest.approx(f1[i])
        assert got[name]["support"] == support[i]


def test_a_class_missing_from_a_small_split_is_left_out_of_the_macro_auroc():
    from dlrun.tasks.metrics import ranking_metrics

    rng = np.random.default_rng(6)
    y = rng.integers(0, 3, 80)  # classes 0-2 of 4: sklearn refuses this, we average over 3
    p = _scores(rng, y, 4)
    got = ranking_metrics(torch.tensor(p), torch.tensor(y))
    want = np.mean([skm.roc_auc_score(y == c, p[:, c]) for c in range(3)])
    assert got["auroc_macro"] == pytest.approx(want)
