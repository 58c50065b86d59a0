"""dlrun.schedules.Warmup keeps its place across a checkpoint: a resumed schedule continues
with the same learning rates as one that never stopped."""

import pytest
import torch

from dlrun.schedules import Warmup, step_after_epoch


def schedule(lr=0.1, plateau=False):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    inner = (
        torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "max", factor=0.5, patience=0)
        if plateau
        else torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    )
    return opt, Warmup(opt, inner, steps=2, start_factor=0.2)


@pytest.mark.parametrize("plateau", [False, True], ids=["cosine", "plateau"])
def test_a_resumed_warmup_continues_where_it_stopped(plateau):
    values = [0.5, 0.6, 0.6, 0.55, 0.7, 0.7]  # the monitored metric, for plateau
    opt, sched = schedule(plateau=plateau)
    straight = []
    for value in values:
        straight.append(opt.param_groups[0]["lr"])
        step_after_epoch(sched, value)
    opt, sched = schedule(plateau=plateau)
    resumed = []
    for value in values[:3]:
        resumed.append(opt.param_groups[0]["lr"])
        step_after_epoch(sched, value)
    saved_opt, saved = opt.state_dict(), sched.state_dict()
    opt, sched = schedule(plateau=plateau)  # a new process: built again, then restored
    opt.load_state_dict(saved_opt)
    sched.load_state_dict(saved)
    for value in values[3:]:
        resumed.append(opt.param_groups[0]["lr"])
        step_after_epoch(sched, value)
    assert resumed == pytest.approx(straight)
    assert straight[:3] == pytest.approx([0.02, 0.06, 0.1])  # warm-up, then the full lr
