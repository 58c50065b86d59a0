"""Which config changes a resume accepts (dlrun/resume.py), without running anything."""

from pathlib import Path

import pytest

from dlrun.errors import ConfigError
from dlrun.resume import check_same_setup

CKPT = Path("run/checkpoints/last.pt")
ONECYCLE = {"_target_": "torch.optim.lr_scheduler.OneCycleLR", "max_lr": 0.1}
COSINE = {"_target_": "torch.optim.lr_scheduler.CosineAnnealingLR", "T_max": 3}
STEP = {"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 5}


def config(epochs: int, scheduler: dict) -> dict:
    return {"trainer": {"epochs": epochs, "batch_size": 64}, "scheduler": scheduler, "seed": 0}


@pytest.mark.parametrize("scheduler", [ONECYCLE, COSINE], ids=["onecycle", "cosine"])
def test_more_epochs_cannot_stretch_an_epoch_sized_schedule(scheduler):
    now = (
        {**scheduler, "T_max": 8} if "T_max" in scheduler else scheduler
    )  # T_max: ${trainer.epochs}
    with pytest.raises(
        ConfigError, match=r"laid out over trainer.epochs=3 .* resume with trainer.epochs=3"
    ):
        check_same_setup(config(3, scheduler), config(8, now), CKPT)


@pytest.mark.parametrize("scheduler", [STEP, {}], ids=["step", "none"])
def test_more_epochs_are_fine_otherwise(scheduler):
    check_same_setup(config(3, scheduler), config(8, scheduler), CKPT)
