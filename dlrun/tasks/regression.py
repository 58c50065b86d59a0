"""Regression: one output per target column."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from dlrun.data.bundle import Batch, DataBundle
from dlrun.tasks.base import Step, Task
from dlrun.tasks.metrics import regression_metrics


class RegressionTask(Task):
    name = "regression"
    default_loss = "mse"
    allowed_losses = ("MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss")
    default_monitor = "loss"
    metric_names = ("loss", "mae", "rmse", "r2")
    exports_raw_columns = True  # a table model's export takes its raw columns
    metric_modes = {"loss": "min", "mae": "min", "rmse": "min", "r2": "max"}

    def __init__(self, model: nn.Module, loss_fn: nn.Module, data: DataBundle) -> None:
        super().__init__(model, loss_fn, data)
        self.last_predictions: tuple[Tensor, Tensor] | None = None

    @classmethod
    def output_facts(cls, loss_fn: nn.Module, data: DataBundle) -> dict[str, Any]:
        return {"out_features": data.num_targets, "num_classes": data.num_targets}

    def train_step(self, batch: Batch) -> Iterator[Step]:
        yield Step("model", self.loss_fn(self.forward(batch), batch["y"]))

    def evaluate(self, batches: Iterable[Batch]) -> dict[str, Any]:
        preds, targets, loss_sum = [], [], 0.0
        for batch in batches:
            out = self.forward(batch).float()
            loss_sum = loss_sum + self.loss_fn(out, batch["y"]) * len(out)
            preds.append(out)
            targets.append(batch["y"])
        # The model learns standardised targets; metrics and predictions are in target units.
        pred, target = (self.to_target_units(torch.cat(t)) for t in (preds, targets))
        self.last_predictions = (pred.cpu(), target.cpu())
        metrics: dict[str, Any] = regression_metrics(pred, target)
        metrics["loss"] = float(loss_sum) / len(target)  # the training objective's scale
        return metrics

    def to_target_units(self, values: Tensor) -> Tensor:
        """Standardised model outputs (or targets) -> the target's own units."""
        prep = self.data.preprocessing
        return prep.unscale_target(values.float()) if prep is not None else values

    def answers(self, batch: Batch) -> dict[str, Tensor]:
        return {"values": self.model(**batch).float()}  # the predictor puts them in target units
