"""Classification's metrics as a task reports them: the new ones can be trainer.monitor, and a
model adds its own metric with its direction."""

import pytest
import torch
from torch import nn

from dlrun import build
from dlrun.errors import ConfigError


class WithMargin(nn.Module):
    """A model that reports its own metric: the mean probability of the true class."""

    dlrun_metric_modes = {"true_class_prob": "max"}

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)

    def dlrun_metrics(self, scores, targets):
        return {"true_class_prob": scores.gather(1, targets.long()[:, None]).mean()}


def evaluate(task, data):
    with torch.no_grad():  # as the loop calls it
        return task.evaluate(data.val.batches(64))


def task_for(compose, *overrides):
    cfg = compose(*overrides)
    data = build.build_data(cfg.data, seed=0)
    return build.build_task(cfg, data, torch.device("cpu")), data


def test_new_metrics_are_monitorable_in_their_direction(compose):
    task, data = task_for(compose)  # digits: 10 classes
    for name in ("top5_accuracy", "auroc_macro", "average_precision_macro"):
        assert task.monitor_mode(name) == "max"
    metrics = evaluate(task, data)
    assert 0 < metrics["top5_accuracy"] <= 1 and 0 < metrics["auroc_macro"] <= 1
    assert set(metrics["per_class"]) == {str(c) for c in data.class_names}


def test_top5_needs_more_than_five_classes(compose):
    task, data = task_for(compose, "data=classification")
    with pytest.raises(ConfigError, match="top5_accuracy needs more than 5 classes"):
        task.monitor_mode("top5_accuracy")
    assert "top5_accuracy" not in evaluate(task, data)


def test_a_model_adds_a_metric_with_its_direction(compose):
    task, data = task_for(compose)
    task.model = WithMargin(task.model)
    assert task.monitor_mode("true_class_prob") == "max"
    value = evaluate(task, data)["true_class_prob"]
    assert isinstance(value, float) and 0 < value < 1
    with pytest.raises(ConfigError, match="not a classification metric"):
        task.monitor_mode("margin")
