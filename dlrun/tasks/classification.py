"""Classification: logits over all classes (or one logit for two-class BCE)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from dlrun.data.bundle import Batch, DataBundle
from dlrun.errors import ConfigError, DataError
from dlrun.tasks.base import Step, Task
from dlrun.tasks.metrics import classification_metrics, per_class, ranking_metrics, top_k_accuracy


class ClassificationTask(Task):
    name = "classification"
    default_loss = "cross_entropy"
    allowed_losses = ("CrossEntropyLoss", "BCEWithLogitsLoss")
    default_monitor = "accuracy"
    metric_names = (
        "accuracy",
        "f1_macro",
        "precision_macro",
        "recall_macro",
        "top5_accuracy",  # more than 5 classes only
        "auroc_macro",
        "average_precision_macro",
        "loss",
    )
    exports_raw_columns = True  # a table model's export takes its raw columns
    metric_modes = {
        "accuracy": "max",
        "f1_macro": "max",
        "precision_macro": "max",
        "recall_macro": "max",
        "top5_accuracy": "max",
        "auroc_macro": "max",
        "average_precision_macro": "max",
        "loss": "min",
    }

    def __init__(self, model: nn.Module, loss_fn: nn.Module, data: DataBundle) -> None:
        super().__init__(model, loss_fn, data)
        self.binary_logit = isinstance(loss_fn, nn.BCEWithLogitsLoss)
        self.num_classes = data.num_classes or 2
        self.last_predictions: tuple[Tensor, Tensor] | None = (
            None  # (preds, targets) of the last eval
        )

    @classmethod
    def check_data(cls, data: DataBundle) -> None:
        """One class has nothing to learn: it would "complete" with accuracy 1.0."""
        if data.num_classes is not None and data.num_classes < 2:
            raise DataError(
                f"{data.source} has one class only ({data.class_names}): a classifier needs two or "
                "more (image_folder: one sub-folder of images per class)"
            )

    @classmethod
    def check_loss(cls, loss_fn: nn.Module, data: DataBundle) -> None:
        super().check_loss(loss_fn, data)
        if isinstance(loss_fn, nn.BCEWithLogitsLoss) and data.num_classes != 2:
            raise ConfigError(
                f"loss=bce_with_logits needs two classes but the data has {data.num_classes}: "
                "use loss=cross_entropy"
            )

    @classmethod
    def output_facts(cls, loss_fn: nn.Module, data: DataBundle) -> dict[str, Any]:
        width = 1 if isinstance(loss_fn, nn.BCEWithLogitsLoss) else data.num_classes
        return {"out_features": width, "num_classes": width}

    @classmethod
    def class_weight_kwargs(cls, weights: Any, loss_cls: type, data: DataBundle) -> dict[str, Any]:
        """loss.class_weights: `auto` = n / (classes * n_c) from the training split (sklearn's
        "balanced"), or one number per class. BCE gets them as pos_weight = w1 / w0."""
        n_classes = data.num_classes or 2
        if weights == "auto":
            counts = data.train_class_counts().double()
            w = counts.sum() / (n_classes * counts.clamp(min=1))
            w[counts == 0] = 1.0  # a class absent from training: its weight never applies
        else:
            w = torch.tensor([float(v) for v in weights], dtype=torch.float64)
            if len(w) != n_classes:
                raise ConfigError(
                    f"loss.class_weights has {len(w)} values but the data has {n_classes} "
                    f"classes {data.class_names}: give one per class, or auto"
                )
        w = w.float()
        if issubclass(loss_cls, nn.BCEWithLogitsLoss):
            return {"pos_weight": (w[1] / w[0]).reshape(1)}
        return {"weight": w}

    def _loss(self, logits: Tensor, y: Tensor) -> Tensor:
        if self.binary_logit:
            # soft targets (B, 2) from MixUp/CutMix: class 1's probability is BCE's target
            target = y[:, 1] if y.ndim == 2 else y.float()
            return self.loss_fn(logits.squeeze(1), target)
        return self.loss_fn(logits, y)

    def _predict(self, logits: Tensor) -> Tensor:
        return (logits.squeeze(1) > 0).long() if self.binary_logit else logits.argmax(1)

    def train_step(self, batch: Batch) -> Iterator[Step]:
        # y: class ids (B,), or class probabilities (B, classes) after MixUp/CutMix, which
        # cross-entropy takes as they are
        yield Step("model", self._loss(self.forward(batch), batch["y"]))

    def _scores(self, logits: Tensor) -> Tensor:
        """(N, C) class probabilities (two columns for a single BCE logit)."""
        if self.binary_logit:
            p = torch.sigmoid(logits.squeeze(1))
            return torch.stack([1 - p, p], 1)
        return logits.softmax(1)

    def monitor_mode(self, metric: str, key: str = "trainer.monitor") -> str:
        if metric == "top5_accuracy" and self.num_classes <= 5:
            raise ConfigError(
                f"{key}=top5_accuracy needs more than 5 classes (this data has "
                f"{self.num_classes}): monitor accuracy"
            )
        return super().monitor_mode(metric, key)

    def evaluate(self, batches: Iterable[Batch]) -> dict[str, Any]:
        scores, preds, targets, loss_sum = [], [], [], 0.0
        for batch in batches:
            logits = self.forward(batch).float()
            loss_sum = loss_sum + self._loss(logits, batch["y"]) * len(logits)  # stays on device
            scores.append(self._scores(logits))
            # from the logits, as predict picks: two logits that differ can round to one probability
            preds.append(self._predict(logits))
            targets.append(batch["y"])
        score, pred, target = torch.cat(scores), torch.cat(preds), torch.cat(targets)
        if target.ndim == 2:  # class probabilities (MixUp/CutMix): the most probable is the label
            target = target.argmax(1)
        self.last_predictions = (pred.cpu(), target.cpu())
        metrics = classification_metrics(pred, target, self.num_classes)
        if self.num_classes > 5:
            metrics["top5_accuracy"] = top_k_accuracy(score, target, 5)
        metrics.update(ranking_metrics(score, target))
        metrics["loss"] = float(loss_sum) / len(target)
        metrics.update(self.model_metrics(score, target))
        names = self.data.class_names or [str(c) for c in range(self.num_classes)]
        metrics["per_class"] = per_class(pred, target, [str(n) for n in names])
        return metrics

    def answers(self, batch: Batch) -> dict[str, Tensor]:
        out = self.model(**batch).float()
        # the class is picked from the logits as the metrics pick it (two logits that differ can
        # round to the same probability)
        if getattr(self, "binary_logit", False):
            p = torch.sigmoid(out.squeeze(1))
            return {"probabilities": torch.stack([1 - p, p], 1), "index": (out.squeeze(1) > 0)}
        return {"probabilities": torch.softmax(out, 1), "index": out.argmax(1)}
