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
