"""Which config changes a resume accepts (dlrun/resume.py), without running anything."""

from pathlib import Path

import pytest

from dlrun.errors import ConfigError, DataError
from dlrun.resume import check_same_setup, plan

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


def test_the_optimizers_implementation_may_change_but_not_its_update():
    """fused/foreach choose torch's kernels (a checkpoint from before optimizer.fused existed
    still resumes); lr is the update itself."""
    adam = {"_target_": "torch.optim.Adam", "lr": 0.001}
    saved = {**config(3, STEP), "optimizer": adam, "optimizers": {"generator": {"lr": 1e-4}}}
    now = {**saved, "optimizer": {**adam, "fused": True}}
    check_same_setup(saved, now, CKPT)
    check_same_setup(saved, {**now, "optimizers": {"generator": {"lr": 1e-4, "foreach": 1}}}, CKPT)
    with pytest.raises(ConfigError, match=r"optimizer.lr \(checkpoint 0.001, now 0.01\)"):
        check_same_setup(saved, {**now, "optimizer": {**now["optimizer"], "lr": 0.01}}, CKPT)


def test_resume_path_continues_that_checkpoint_in_its_own_run_folder_or_a_new_one(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(b"not read here")
    (run / "metrics.json").write_text("{}")
    decided = plan(str(run), tmp_path / "elsewhere")
    assert decided.action == "continue" and decided.checkpoint == run / "checkpoints" / "last.pt"
    assert decided.in_run_folder
    loose = tmp_path / "downloaded.pt"
    loose.write_bytes(b"not read here")
    decided = plan(str(loose), tmp_path / "new")
    assert decided.checkpoint == loose and not decided.in_run_folder  # a new folder, best afresh
    with pytest.raises(DataError, match="no checkpoint at"):
        plan(str(tmp_path / "missing"), tmp_path / "new")
