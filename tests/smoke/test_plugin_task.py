"""A plugin task owns its metrics' directions: a higher-is-better metric of its own picks the
best epoch by its maximum, and a metric it gives no direction is refused in one line."""

from __future__ import annotations

import csv

from tests.conftest import read_metrics, run_dirs

PLUGIN = """
from torch import nn

import dlrun
from dlrun.tasks import ClassificationTask


@dlrun.register("task", "scored")
class ScoredTask(ClassificationTask):
    name = "scored"
    metric_names = (*ClassificationTask.metric_names, "iou", "undirected")
    metric_modes = {**ClassificationTask.metric_modes, "iou": "max"}

    def evaluate(self, batches):
        metrics = super().evaluate(batches)
        metrics["iou"] = metrics["undirected"] = metrics["accuracy"]  # higher is better
        return metrics


@dlrun.register("model", "scored_net")
class ScoredNet(nn.Module):
    dlrun_task = "scored"

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.net = nn.Linear(in_features, num_classes)

    def forward(self, x):
        return self.net(x)
"""

ARGS = ["plugins=[scoring]", "model=scored_net", "trainer.epochs=4", "optimizer.lr=0.003"]


def test_a_plugin_metric_where_higher_is_better_picks_its_best_epoch_by_max(dlrun, tmp_path):
    (tmp_path / "scoring.py").write_text(PLUGIN)
    dlrun(*ARGS, "trainer.monitor=iou", "trainer.early_stopping.metric=iou")
    (run,) = run_dirs(tmp_path)
    record = read_metrics(run)
    iou = [float(r["val_iou"]) for r in csv.DictReader((run / "history.csv").open())]
    assert record["monitor"] == {"metric": "iou", "mode": "max"}
    assert len(set(iou)) > 1  # the epochs differ, so min and max pick different ones
    assert record["best_val"]["iou"] == max(iou) != min(iou)
    assert iou[record["best_epoch"] - 1] == max(iou)


def test_a_metric_without_a_direction_is_refused(dlrun, tmp_path):
    (tmp_path / "scoring.py").write_text(PLUGIN)
    proc = dlrun(*ARGS, "trainer.monitor=undirected", expect_fail=True)
    assert proc.returncode == 2
    assert "does not say whether higher or lower is better" in proc.stderr
    assert "Traceback" not in proc.stderr
