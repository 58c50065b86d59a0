"""Learning-rate schedules beyond torch's own: a linear warm-up in front of any scheduler
(`scheduler.warmup_epochs=N`), and stepping a scheduler after an epoch with the monitored metric
where it needs one (`scheduler=plateau`, torch's ReduceLROnPlateau)."""

from __future__ import annotations

from typing import Any

import torch


def needs_metric(scheduler: Any) -> bool:
    """Whether the scheduler steps on a metric value (ReduceLROnPlateau), not on time."""
    if isinstance(scheduler, Warmup):
        return needs_metric(scheduler.inner)
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


def step_after_epoch(scheduler: Any, value: float) -> None:
    """One epoch-interval step; `value` is the epoch's monitored validation metric."""
    if needs_metric(scheduler):
        scheduler.step(value)
    else:
        scheduler.step()


class Warmup:
    """Linear warm-up over the first `steps` steps (epochs, or optimizer steps for a per-step
    schedule), then `inner` (or a constant lr for scheduler=none) from where it started.

    The lr of step k (0-based) of the warm-up is lr * (f + (1 - f) * k / steps), f being
    `start_factor`; at step `steps` the lr is the one `inner` starts from. `inner` does not step
    during the warm-up (build.py shortens its horizon by the warm-up), so a cosine or one-cycle
    schedule still ends where it would have without one.
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, inner: Any, steps: int, start_factor: float
    ) -> None:
        self.optimizer, self.inner = optimizer, inner
        self.steps, self.start_factor = steps, start_factor
        self.taken = 0
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self._scale(start_factor)

    def _scale(self, factor: float) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * factor

    def step(self, *metric: float) -> None:
        if self.taken < self.steps:
            self.taken += 1
            self._scale(self.start_factor + (1 - self.start_factor) * self.taken / self.steps)
        elif self.inner is not None:
            self.inner.step(*metric)

    def state_dict(self) -> dict[str, Any]:
        inner = self.inner.state_dict() if self.inner is not None else None
        return {"taken": self.taken, "base_lrs": list(self.base_lrs), "inner": inner}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.taken, self.base_lrs = int(state["taken"]), list(state["base_lrs"])
        if self.inner is not None and state.get("inner") is not None:
            self.inner.load_state_dict(state["inner"])
