"""Schedules through real runs: the lr column of history.csv is the rate each epoch trained with,
warm-up in front of every scheduler, and scheduler=plateau on the monitored metric."""

import csv
import math

import pytest
import torch

from tests.conftest import run_dirs

RUN = ["debug=smoke", "optimizer=sgd", "optimizer.lr=0.1"]


def history(tmp_path, column="lr"):
    (run,) = run_dirs(tmp_path)
    return [float(row[column]) for row in csv.DictReader((run / "history.csv").open())]


def test_step_schedule_lr_column_is_the_rate_used_during_each_epoch(dlrun, tmp_path):
    dlrun(
        *RUN, "trainer.epochs=3", "scheduler=step", "scheduler.step_size=1", "scheduler.gamma=0.5"
    )
    assert history(tmp_path) == pytest.approx([0.1, 0.05, 0.025])


def test_warmup_before_a_constant_lr(dlrun, tmp_path):
    dlrun(*RUN, "trainer.epochs=4", "scheduler.warmup_epochs=2")
    # epoch k <= N trains with lr * (f + (1 - f) * (k - 1) / N), f = warmup_start_factor = 0.1
    assert history(tmp_path) == pytest.approx([0.01, 0.055, 0.1, 0.1])


def test_warmup_then_cosine_over_the_epochs_left(dlrun, tmp_path):
    dlrun(*RUN, "trainer.epochs=5", "scheduler=cosine", "scheduler.warmup_epochs=2",
          "scheduler.warmup_start_factor=0.2")  # fmt: skip
    cosine = [0.05 * (1 + math.cos(math.pi * t / 3)) for t in range(3)]  # T_max = 5 - 2 epochs
    assert history(tmp_path) == pytest.approx([0.02, 0.06, *cosine])


def test_plateau_steps_on_the_monitored_metric_in_its_direction(dlrun, tmp_path):
    dlrun(*RUN, "trainer.epochs=6", "scheduler=plateau", "scheduler.patience=0",
          "scheduler.factor=0.5", "trainer.monitor=loss", "optimizer.lr=2.0")  # fmt: skip
    losses, lrs = history(tmp_path, "val_loss"), history(tmp_path)
    # torch's own ReduceLROnPlateau, fed the run's val losses, gives the same lr sequence
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2.0)
    reference = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "min", factor=0.5, patience=0)
    expected = []
    for loss in losses:
        expected.append(opt.param_groups[0]["lr"])
        reference.step(loss)
    assert lrs == pytest.approx(expected)
    assert len(set(lrs)) > 1  # lr=2.0 overshoots: the loss does not always improve


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["scheduler.warmup_epochs=-1"], "scheduler.warmup_epochs=-1 is invalid"),
        (["scheduler=cosine", "scheduler.warmup_epochs=3", "trainer.epochs=3"], "leaves no epoch"),
        (["scheduler.warmup_start_factor=0"], "scheduler.warmup_start_factor=0 is invalid"),
        (["scheduler=plateau", "scheduler.interval=step"], "use interval=epoch"),
    ],
)
def test_bad_schedule_settings_are_one_line(dlrun, overrides, message):
    proc = dlrun(*RUN, *overrides, expect_fail=True)
    assert proc.returncode == 2 and message in proc.stderr
    assert "Traceback" not in proc.stderr
