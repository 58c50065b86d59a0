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

    Macro averages run over the classes present in targets or predictions, and a class with no
    predicted samples has precision 0 - the same conventions as sklearn's defaults.
    """
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
