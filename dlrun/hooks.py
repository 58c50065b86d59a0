"""Hooks: your code at named stages of the one training loop, without editing the loop.

A hook is any object with some of these methods, each called with one `HookContext`:

    on_fit_start       training starts (or resumes)
    on_epoch_start     an epoch starts (or resumes part-way)
    on_batch_end       after each training batch (its optimizer step, if it made one)
    on_validation_end  after each epoch's validation: `ctx.metrics` holds the val metrics
    on_epoch_end       the epoch is recorded (`ctx.metrics` is its history row), before its
                       checkpoint is written
    on_fit_end         training ended (all epochs, or stopped early); not on a failure

and, optionally, `state_dict()` / `load_state_dict(state)` (plain values and tensors): saved in
every checkpoint under the hook's name and given back on resume, so a resumed run is bit-exact
with hooks on; `record()`: a dict kept in metrics.json under `hooks.<name>`;
`evaluation_weights()`: a model state_dict that validation, best.pt, the test pass, exports and
predictions use instead of the training weights (what `ema` does).

Choose hooks with `hooks=[ema]` (conf/hooks/), or register your own:
`@dlrun.register("hook", "count_calls")` in a plugin module, then
`dlrun plugins=[myhooks] hooks=[count_calls]` (docs/hooks.md has the full example).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from dlrun.loop import LoopState
    from dlrun.tasks.base import Task

STAGES = (
    "on_fit_start",
    "on_epoch_start",
    "on_batch_end",
    "on_validation_end",
    "on_epoch_end",
    "on_fit_end",
)


@dataclass
class HookContext:
    """What a hook sees at every stage (one object for the whole fit, updated as it goes)."""

    model: nn.Module  # the bare model (under torchrun: unwrapped from DistributedDataParallel)
    task: Task
    optimizers: dict[str, torch.optim.Optimizer]  # by group name: "model"; a GAN's two
    schedulers: dict[str, Any]  # by group name: (scheduler, "epoch" | "step")
    state: LoopState  # where training stands (saved in checkpoints)
    run_dir: Path
    max_epochs: int
    metrics: dict[str, Any] = field(default_factory=dict)  # the latest (see the stages)
    stop_reason: str | None = None

    @property
    def epoch(self) -> int:
        """Epochs completed (0 during the first epoch)."""
        return self.state.epoch

    @property
    def step(self) -> int:
        """Optimizer steps taken over the whole run."""
        return self.state.optimizer_steps

    @property
    def batch(self) -> int:
        """Training batches done over the whole run."""
        return self.state.batches_done

    def stop(self, reason: str) -> None:
        """End training after this epoch, as early stopping does (the run completes: the best
        epoch is tested and recorded); `reason` is logged."""
        self.stop_reason = reason
        self.state.early_stopped = True


class Hooks:
    """The run's hooks by name, and each stage's bound methods (an empty stage costs nothing)."""

    def __init__(self, named: dict[str, Any] | None = None) -> None:
        self.named = dict(named or {})
        self.stages = {
            stage: [getattr(h, stage) for h in self.named.values() if hasattr(h, stage)]
            for stage in STAGES
        }

    def __bool__(self) -> bool:
        return bool(self.named)

    def call(self, stage: str, ctx: HookContext) -> None:
        for method in self.stages[stage]:
            method(ctx)

    def state_dict(self) -> dict[str, Any]:
        return {n: h.state_dict() for n, h in self.named.items() if hasattr(h, "state_dict")}

    def load_state_dict(self, states: dict[str, Any]) -> None:
        for name, hook in self.named.items():
            if name in states and hasattr(hook, "load_state_dict"):
                hook.load_state_dict(states[name])

    def record(self) -> dict[str, Any]:
        return {n: (h.record() if hasattr(h, "record") else {}) for n, h in self.named.items()}

    def evaluation_weights(self) -> dict[str, Tensor] | None:
        """The weights to evaluate and save for use, where a hook supplies them (ema)."""
        for hook in self.named.values():
            weights = hook.evaluation_weights() if hasattr(hook, "evaluation_weights") else None
            if weights is not None:
                return weights
        return None

    @contextlib.contextmanager
    def evaluating(self, model: nn.Module) -> Iterator[None]:
        """The model holds the evaluation weights inside the block, its own weights after."""
        weights = self.evaluation_weights()
        if weights is None:
            yield
            return
        own = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(weights)
        try:
            yield
        finally:
            model.load_state_dict(own)


class EMA:
    """`hooks=[ema]`: an exponential moving average of the weights, updated after every
    optimizer step (shadow = decay * shadow + (1 - decay) * weights; floating-point buffers such
    as BatchNorm's running statistics too). Validation, best.pt, the test pass, exports and
    predictions use the averaged weights; training continues on its own."""

    def __init__(self, decay: float = 0.999) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be between 0 and 1 (exclusive), got {decay}")
        self.decay = decay
        self.updates = 0
        self.shadow: dict[str, Tensor] | None = None
        self._all: dict[str, Tensor] = {}  # the model's state_dict (live tensors)
        self._live: dict[str, Tensor] = {}  # its floating-point entries, which are averaged
        self._seen_step = -1

    def on_fit_start(self, ctx: HookContext) -> None:
        self._all = ctx.model.state_dict()
        self._live = {k: v for k, v in self._all.items() if v.is_floating_point()}
        if self.shadow is None:  # a fresh run: the average starts at the initial weights
            self.shadow = {k: v.detach().clone() for k, v in self._live.items()}
        else:  # resumed: the saved average, on the model's device
            self.shadow = {k: v.to(self._live[k].device) for k, v in self.shadow.items()}
        self._seen_step = ctx.step

    def on_batch_end(self, ctx: HookContext) -> None:
        if ctx.step == self._seen_step:  # no optimizer step this batch (grad_accum)
            return
        self._seen_step = ctx.step
        assert self.shadow is not None
        keys = list(self.shadow)
        with torch.no_grad():
            torch._foreach_lerp_(
                [self.shadow[k] for k in keys], [self._live[k] for k in keys], 1.0 - self.decay
            )
        self.updates += 1

    def evaluation_weights(self) -> dict[str, Tensor] | None:
        if self.shadow is None:
            return None
        return {**self._all, **self.shadow}  # integer buffers (BatchNorm's counts) as they are

    def state_dict(self) -> dict[str, Any]:
        return {"shadow": self.shadow, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.shadow, self.updates = state["shadow"], int(state["updates"])

    def record(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates}
