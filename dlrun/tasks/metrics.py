"""Metrics computed on the device over a whole split (not averaged per batch).

They match sklearn.metrics on the same predictions (tests check this).
"""

from __future__ import annotations

import torch
from torch import Tensor


def confusion_matrix(preds: Tensor, targets: Tensor, num_classes: int) -> Tensor:
    """(C, C) counts: rows are true classes, columns predicted classes (sklearn's layout)."""
    flat = targets.long() * num_classes + preds.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def classification_metrics(preds: Tensor, targets: Tensor, num_classes: int) -> dict[str, object]:
    """Accuracy, macro precision/recall/F1 and the confusion matrix.

    `targets` may be class probabilities (N, C) (MixUp/CutMix); their argmax is the label.
    Macro averages run over the classes present in targets or predictions, and a class with no
    predicted samples has precision 0 - the same conventions as sklearn's defaults.
    """
    if targets.ndim == 2:  # soft targets (MixUp/CutMix): the most probable class is the label
        targets = targets.argmax(1)
    cm = confusion_matrix(preds, targets, num_classes).double()
    tp = cm.diag()
    support, predicted = cm.sum(1), cm.sum(0)
    present = (support + predicted) > 0
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp(min=1), torch.zeros_like(tp))
    f1_den = 2 * tp + (predicted - tp) + (support - tp)
    f1 = torch.where(f1_den > 0, 2 * tp / f1_den.clamp(min=1), torch.zeros_like(tp))
    return {
        "accuracy": (tp.sum() / cm.sum()).item(),
        "precision_macro": precision[present].mean().item(),
        "recall_macro": recall[present].mean().item(),
        "f1_macro": f1[present].mean().item(),
        "confusion_matrix": cm.long().tolist(),
    }


def per_class(preds: Tensor, targets: Tensor, names: list[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of every class by name (sklearn's
    precision_recall_fscore_support with zero_division=0)."""
    cm = confusion_matrix(preds, targets, len(names)).double()
    tp, support, predicted = cm.diag(), cm.sum(1), cm.sum(0)
    precision = tp / predicted.clamp(min=1)
    recall = tp / support.clamp(min=1)
    f1 = 2 * tp / (support + predicted).clamp(min=1)
    rows = torch.stack([precision, recall, f1, support], 1).tolist()  # one host copy
    keys = ("precision", "recall", "f1", "support")
    return {
        name: {k: (int(v) if k == "support" else v) for k, v in zip(keys, row, strict=True)}
        for name, row in zip(names, rows, strict=True)
    }


def top_k_accuracy(scores: Tensor, targets: Tensor, k: int) -> float:
    """Share of samples whose true class is among the k highest scores (sklearn's
    top_k_accuracy_score, ties included: among equal scores the higher class index ranks first)."""
    top = scores.argsort(dim=1, stable=True).flip(1)[:, :k]
    return (top == targets.long().unsqueeze(1)).any(1).double().mean().item()


def _ranks(values: Tensor) -> Tensor:
    """1-based ranks, ties sharing their average rank (scipy's rankdata 'average')."""
    order = values.argsort()
    sorted_values = values[order]
    distinct, inverse, counts = torch.unique_consecutive(
        sorted_values, return_inverse=True, return_counts=True
    )
    ends = counts.cumsum(0).double()
    average = ends - (counts.double() - 1) / 2  # the mean of each tie group's ranks
    ranks = torch.empty_like(values, dtype=torch.float64)
    ranks[order] = average[inverse]
    return ranks


def auroc(scores: Tensor, positive: Tensor) -> float | None:
    """Area under the ROC curve of one binary problem (Mann-Whitney U / n_pos n_neg);
    None if `positive` holds only one class."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    rank_sum = _ranks(scores.double())[positive].sum().item()
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def average_precision(scores: Tensor, positive: Tensor) -> float | None:
    """sklearn's average_precision_score of one binary problem: sum over distinct thresholds of
    (R_n - R_n-1) P_n; None without positives."""
    n_pos = int(positive.sum())
    if n_pos == 0:
        return None
    sorted_scores, order = scores.double().sort(descending=True)
    tp = positive[order].double().cumsum(0)
    seen = torch.arange(1, len(tp) + 1, dtype=torch.float64, device=tp.device)
    last = torch.ones_like(tp, dtype=torch.bool)  # the last sample of each tie group
    last[:-1] = sorted_scores[1:] != sorted_scores[:-1]
    tp, seen = tp[last], seen[last]
    recall = tp / n_pos
    gained = torch.diff(recall, prepend=recall.new_zeros(1))
    return (gained * tp / seen).sum().item()


def ranking_metrics(scores: Tensor, targets: Tensor) -> dict[str, float]:
    """Macro one-vs-rest AUROC and average precision from (N, C) class scores (probabilities),
    averaged over the classes that have both positives and negatives here (sklearn's
    roc_auc_score(multi_class="ovr") and average_precision_score(average="macro") when every
    class is present; sklearn refuses a class missing from the targets, a small validation
    split may lack one)."""
    targets = targets.long()
    aucs, aps = [], []
    for c in range(scores.shape[1]):
        positive = targets == c
        found = auroc(scores[:, c], positive)
        if found is not None:
            aucs.append(found)
            aps.append(average_precision(scores[:, c], positive))
    if not aucs:
        return {}
    return {"auroc_macro": sum(aucs) / len(aucs), "average_precision_macro": sum(aps) / len(aps)}


def regression_metrics(preds: Tensor, targets: Tensor) -> dict[str, float]:
    """MAE, RMSE and R², each averaged uniformly over target columns (sklearn's default)."""
    preds, targets = (
        preds.double().reshape(len(preds), -1),
        targets.double().reshape(len(targets), -1),
    )
    err = preds - targets
    mae = err.abs().mean(0)
    rmse = err.pow(2).mean(0).sqrt()
    ss_res = err.pow(2).sum(0)
    ss_tot = (targets - targets.mean(0)).pow(2).sum(0)
    r2 = torch.where(ss_tot > 0, 1 - ss_res / ss_tot.clamp(min=1e-300), torch.zeros_like(ss_tot))
    return {"mae": mae.mean().item(), "rmse": rmse.mean().item(), "r2": r2.mean().item()}


def pool_for_fd(pixels: Tensor, max_side: int = 16) -> Tensor:
    """Average-pool (B, C, H, W) images to at most `max_side` pixels a side, then flatten.

    Keeps the Frechet distance's covariance small (<= 16*16*C dimensions) for 28- and 32-pixel data.
    """
    factor = -(-pixels.shape[-1] // max_side)  # ceil
    if factor > 1:
        pixels = torch.nn.functional.avg_pool2d(pixels, factor)
    return pixels.flatten(1)


def _sqrt_psd(matrix: Tensor) -> Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """Frechet distance between Gaussians fitted to two (N, D) samples (FID's formula, no network).

    |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)); the trace of the square root is computed
    from the symmetric form sqrt(S_a) S_b sqrt(S_a), which has the same eigenvalues.
    """
    with torch.autocast(a.device.type, enabled=False):  # float64 throughout, even under bf16 runs
        return _frechet(a.double(), b.double())


def _frechet(a: Tensor, b: Tensor) -> float:
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    root_a = _sqrt_psd(cov_a)
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    mean_term = (a.mean(0) - b.mean(0)).pow(2).sum()
    return float(mean_term + cov_a.trace() + cov_b.trace() - 2 * cross)
