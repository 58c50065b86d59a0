"""Plots, loggers and the run report, in-process."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from dlrun import plots, report
from dlrun.artifacts import RunArtifacts
from dlrun.build import build_loggers, check_all_targets
from dlrun.data.bundle import DataBundle, InMemorySplit
from dlrun.errors import ConfigError
from dlrun.loggers import Loggers, TensorBoardLogger, epoch_tag, flat_params
from dlrun.loop import LoopState, _StepLog
from dlrun.picture import Picture
from dlrun.run import drawn
from dlrun.tasks.regression import RegressionTask
from dlrun.validate import validate_config
from tests.smoke.test_observe import assert_png_shows_something

# --- loop: per-interval values ---------------------------------------------------------------


def test_step_log_reports_interval_means_once_per_interval():
    seen = []
    step_log = _StepLog([lambda step, values: seen.append((step, values))], every=5)
    sums = {"loss": torch.tensor(0.0)}
    for count in range(1, 13):  # losses 1, 2, ..., 12
        sums["loss"] = sums["loss"] + count
        step_log(sums, count, step=100 + count, lr=lambda: 0.1)
    assert seen == [(105, {"loss": 3.0, "lr": 0.1}), (110, {"loss": 8.0, "lr": 0.1})]


def test_step_log_without_callbacks_never_reads_the_sums():
    class Unreadable:  # float() on it would raise: proves no device read happens
        def __float__(self):
            raise AssertionError("read")

    step_log = _StepLog([], every=1)
    for count in range(1, 4):
        step_log({"loss": Unreadable()}, count, count, lambda: 0.1)


# --- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "choice", ["logger=csv", "logger=tensorboard", "logger=mlflow", "logger=[csv,tensorboard]"]
)
def test_logger_options_compose(compose, choice):
    cfg = compose(choice)
    validate_config(cfg)
    check_all_targets(cfg)
    names = choice.split("=")[1].strip("[]").split(",")
    assert sorted(cfg.logger) == sorted(names)


def test_default_logger_is_csv(compose):
    assert list(compose().logger) == ["csv"]


def test_unknown_logger_argument_is_one_line_error(compose, tmp_path):
    cfg = compose("logger=tensorboard", "+logger.tensorboard.flush_every=3")
    with pytest.raises(ConfigError, match=r"logger\.tensorboard\.flush_every is not a parameter"):
        build_loggers(cfg.logger, RunArtifacts(tmp_path), {})


def test_bad_log_interval_is_refused(compose):
    with pytest.raises(ConfigError, match="trainer.log_every_n_steps"):
        validate_config(compose("trainer.log_every_n_steps=0"))


# --- loggers ---------------------------------------------------------------------------------


def test_flat_params_and_tags():
    flat = flat_params({"optimizer": {"lr": 0.1, "betas": [0.9, 0.99]}, "seed": 3, "x": None})
    assert flat == {"optimizer.lr": 0.1, "optimizer.betas": "[0.9, 0.99]", "seed": 3, "x": "None"}
    assert [epoch_tag(k) for k in ["train_loss", "val_f1_macro", "lr", "seconds"]] == [
        "train/loss",
        "val/f1_macro",
        "lr",
        "time/epoch_seconds",
    ]


class ImageTask(RegressionTask):
    """A task returning pictures, as a generative task does."""

    def epoch_pictures(self) -> dict[str, Picture]:
        assert not self.model.training and not torch.is_grad_enabled()
        return {"samples": Picture(torch.rand(4, 3, 8, 8)), "mean": Picture(torch.rand(1, 1, 8, 8))}


def test_tensorboard_logs_task_images_and_png_files(tmp_path: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    split = InMemorySplit({"x": torch.zeros(4, 2), "y": torch.zeros(4, 1)})
    data = DataBundle(split, split, split, task="regression", input_shape=(2,))
    task = ImageTask(nn.Linear(2, 1), nn.MSELoss(), data)
    png = tmp_path / "grid.png"
    Image.fromarray((np.random.rand(16, 16, 3) * 255).astype("uint8")).save(png)
    loggers = Loggers([TensorBoardLogger(RunArtifacts(tmp_path), {"seed": 0})])
    loggers.on_epoch_end(LoopState(epoch=1), {"epoch": 1, "train_loss": 0.5, "lr": 0.1})
    loggers.log_images(1, drawn(task, task.epoch_pictures))  # what the run does after an epoch
    assert task.model.training  # handed back in train mode
    loggers.finish("completed", {"test": {"loss": 0.4}, "best_val": {"loss": 0.5}}, [png])
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert set(events.Tags()["images"]) == {"images/samples", "images/mean", "files/grid.png"}
    assert {"train/loss", "lr", "hparam/test_loss", "hparam/best_val_loss"} <= set(
        events.Tags()["scalars"]
    )


# --- plots and the report --------------------------------------------------------------------


def test_confusion_matrix_with_many_classes_and_multi_target_scatter(tmp_path: Path):
    art = RunArtifacts(tmp_path)
    cm = np.eye(30, dtype=int) * 5 + 1
    names = [f"class_{i}" for i in range(30)]
    art.write_plot("cm.png", plots.confusion_png(cm.tolist(), names))
    pred, true = torch.randn(200, 2), torch.randn(200, 2)
    art.write_plot("scatter.png", plots.scatter_png(pred, true))
    assert_png_shows_something(tmp_path / "plots" / "cm.png")
    assert_png_shows_something(tmp_path / "plots" / "scatter.png")


def test_one_epoch_history_still_draws(tmp_path: Path):
    history = [{"epoch": 1, "train_loss": 0.7, "val_loss": 0.6, "val_mae": 0.3, "lr": 0.01}]
    names = plots.write_plots(RunArtifacts(tmp_path), history, "mae", 1)
    assert names == ["loss.png", "val_mae.png", "lr.png"]
    for name in names:
        assert_png_shows_something(tmp_path / "plots" / name)


def test_model_line_and_summary_table():
    model = nn.Sequential(nn.Linear(10, 5), nn.BatchNorm1d(5))
    model[1].weight.requires_grad_(False)
    line = report.model_line("regression", "my.Model", model, "cpu", "bf16")
    # 55 + 10 parameters, 5 frozen; 65 parameters + 11 buffer values, float32 (+ int64 counter)
    assert "60 trainable / 65 parameters" in line and "device cpu, precision bf16" in line
    assert f"{(75 * 4 + 8) / 2**20:.2f} MB" in line
    record = {
        "monitor": {"metric": "rmse"},
        "best_epoch": 4,
        "epochs_run": 6,
        "best_val": {"loss": 0.25, "rmse": 0.5},
        "test": {"loss": 0.36, "rmse": 0.6, "r2": 0.9},
        "train_seconds": 1.5,
        "samples_per_second": 12345.6,
        "run_dir": "/runs/x",
    }
    lines = report.summary_table(record, 3.31).splitlines()
    assert lines[0] == "run summary: test (best epoch 4 of 6, by val rmse)"
    assert lines[2].split() == ["rmse", "0.5", "0.6"]  # the monitored metric first
    assert lines[4].split() == ["r2", "-", "0.9"]
    assert lines[5].split() == ["wall", "time", "3.3", "s", "(training", "1.5", "s)"]
    resumed = report.summary_table({**record, "train_seconds": 9.0}, 3.31).splitlines()[5]
    assert "3.3 s this session (training 9.0 s over the whole run)" in resumed
    assert lines[6].split() == ["samples/s", "12,346"] and lines[7].split() == [
        "run",
        "folder",
        "/runs/x",
    ]


def test_closed_loggers_are_released():
    """A sweep runs many jobs in one process: a finished job's loggers (and their files and
    connections) must not stay alive through their atexit hook."""
    import gc
    import weakref

    loggers = Loggers([])
    alive = weakref.ref(loggers)
    loggers.finish("completed", {}, [])
    del loggers
    gc.collect()
    assert alive() is None


def test_step_log_intervals_run_across_epochs():
    # 21 batches an epoch (digits at batch 64) and an interval of 50: the interval must not
    # restart every epoch (it did, and steps.csv stayed empty); batch b has loss b.
    import torch

    from dlrun.loop import _StepLog

    rows = []
    log = _StepLog([lambda step, values: rows.append((step, values["loss"]))], every=50)
    step = 0
    for _ in range(5):
        log.start_epoch()
        sums = {"loss": torch.tensor(0.0)}
        for count in range(1, 22):
            step += 1
            sums["loss"] = sums["loss"] + step
            log(sums, count, step, lr=lambda: 0.1)
        log.end_epoch({k: float(v) for k, v in sums.items()}, 21)
    assert rows == [(50, 25.5), (100, 75.5)]  # means of batches 1..50 and 51..100
