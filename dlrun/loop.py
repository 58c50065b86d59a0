"""The one training loop: epochs of shuffled batches, validation, best-epoch tracking, early
stopping, checkpoints, progress and stop signals. Tasks plug in; the loop never changes per task.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from dlrun import distributed
from dlrun.data.bundle import Batch, DataBundle, Split, num_batches
from dlrun.errors import Interrupted, TrainingFailed
from dlrun.hooks import HookContext, Hooks
from dlrun.runtime import StopFlag
from dlrun.schedules import step_after_epoch
from dlrun.schema import TrainerConfig
from dlrun.tasks.base import Task

log = logging.getLogger("dlrun")

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class LoopState:
    """Where training stands; saved in every checkpoint so a run can continue exactly."""

    epoch: int = 0  # epochs completed
    batch_in_epoch: int = 0  # batches done in the current, unfinished epoch
    epoch_sums: dict[str, Tensor] = field(default_factory=dict)  # its running loss sums (on device)
    batches_done: int = 0  # over the whole run
    nonfinite_skipped: int = 0
    optimizer_steps: int = 0
    best_value: float | None = None
    best_epoch: int | None = None
    best_val: dict[str, Any] = field(default_factory=dict)
    stop_best: float | None = None  # early stopping's own best and patience counter
    bad_epochs: int = 0
    early_stopped: bool = False
    train_seconds: float = 0.0
    train_samples: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        # Shallow: the checkpoint pickles it at once. dataclasses.asdict deep-copies every history
        # row and running-sum tensor, which cost more than the rest of the checkpoint put together.
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Optimization:
    """What the loop steps: optimizers and schedulers by group name, and the fp16 grad scaler."""

    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, tuple[Any, str]]
    scaler: torch.amp.GradScaler | None = None


class CheckpointWriter(Protocol):
    """Writes last.pt; with best=True, best.pt gets the same checkpoint."""

    def __call__(self, state: LoopState, best: bool = False) -> None: ...


# Called after every epoch with the state and that epoch's history row (loggers, plots...).
EpochCallback = Callable[[LoopState, dict[str, Any]], None]
# Called every `log_every_n_steps` batches with the global batch number and the mean of each
# training value over those batches, plus "lr" (loggers' per-step scalars).
StepCallback = Callable[[int, dict[str, float]], None]


@dataclass
class LoopHooks:
    """Named points of the loop where a run plugs in behaviour without touching the loop body:
    `before_batch` may replace a batch (or raise), `after_batch` sees the state after each batch,
    `after_validation` after each epoch's validation. Empty lists cost nothing measurable. Tests
    inject faults here (dlrun.faults.loop_hooks); a profiler or debugger could do the same."""

    before_batch: list[Callable[[Batch], Batch]] = field(default_factory=list)
    after_batch: list[Callable[[LoopState], None]] = field(default_factory=list)
    after_validation: list[Callable[[LoopState], None]] = field(default_factory=list)


class _StepLog:
    """Interval means for step callbacks, every `every` batches of the run (an interval may span
    epochs), from the loop's on-device per-epoch running sums: the sums are read (one device
    sync) once per interval, never per step."""

    def __init__(self, callbacks: list[StepCallback], every: int) -> None:
        self.callbacks, self.every = callbacks, every
        self.carry: dict[str, float] = {}  # the open interval's sums from earlier epochs
        self.carry_count = 0
        self.start_epoch()

    def start_epoch(self) -> None:
        self.read: dict[str, float] = {}
        self.read_count = 0

    def end_epoch(self, totals: dict[str, float], count: int) -> None:
        """The epoch's final sums (read once at its end): its unlogged tail joins the next
        interval."""
        for k, v in totals.items():
            self.carry[k] = self.carry.get(k, 0.0) + v - self.read.get(k, 0.0)
        self.carry_count += count - self.read_count

    def __call__(
        self, sums: dict[str, Tensor], count: int, step: int, lr: Callable[[], float]
    ) -> None:
        n = self.carry_count + count - self.read_count
        if not self.callbacks or n < self.every:
            return
        now = {k: float(v) for k, v in sums.items()}  # the interval's one sync
        means = {
            k: (self.carry.get(k, 0.0) + v - self.read.get(k, 0.0)) / n for k, v in now.items()
        }
        self.read, self.read_count = now, count
        self.carry, self.carry_count = {}, 0
        for callback in self.callbacks:
            callback(step, {**means, "lr": lr()})


def grad_clearer(opt: torch.optim.Optimizer) -> Callable[[], None]:
    """`opt.zero_grad(set_to_none=True)` for torch's own zero_grad, without the profiler record
    and dynamo guard it opens on every call (~20 us a step on this CPU: 2-3% of a small MLP's
    step). An optimizer class with its own zero_grad keeps it."""
    if type(opt).zero_grad is not torch.optim.Optimizer.zero_grad:
        return lambda: opt.zero_grad(set_to_none=True)
    params = [p for group in opt.param_groups for p in group["params"]]

    def clear() -> None:
        for p in params:
            p.grad = None

    return clear


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision in _DTYPES:
        return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])
    return contextlib.nullcontext()


def epoch_order(n: int, seed: int, epoch: int, device: torch.device) -> Tensor:
    """The shuffled sample order of one epoch: a function of (seed, epoch) only, so resumable."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen).to(device, non_blocking=True)


def samples_per_epoch(n_train: int, batch_size: int, drop_last: str | bool) -> int:
    """Training samples used per epoch: all, less an incomplete last batch that is dropped
    (trainer.drop_last). The order is reshuffled every epoch, so no sample is always left out."""
    rest = n_train % batch_size
    if rest and (drop_last is True or (drop_last == "auto" and rest == 1)):
        return n_train - rest
    return n_train


def steps_per_epoch(n_train: int, s: TrainerConfig) -> int:
    """Optimizer steps per epoch (used to size per-step schedules such as one-cycle)."""
    batches = num_batches(samples_per_epoch(n_train, s.batch_size, s.drop_last), s.batch_size)
    if s.limit_train_batches:
        batches = min(batches, s.limit_train_batches)
    return math.ceil(batches / s.grad_accum)


def is_better(value: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    if best is None:
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta


def _ties_lower_loss(value: float, val: dict[str, Any], state: LoopState) -> bool:
    """A tie on the monitored metric goes to the lower validation loss: on a small validation
    split accuracy saturates (14/14 on wine's) and the first epoch to reach it is rarely the best
    model."""
    loss, best_loss = val.get("loss"), state.best_val.get("loss")
    if value != state.best_value or not isinstance(loss, float) or best_loss is None:
        return False
    return loss < best_loss


def _progress(
    batches: Iterator[Batch], total: int, epoch: int, s: TrainerConfig
) -> Iterator[Batch]:
    if not (s.progress and sys.stderr.isatty()):
        return batches
    from tqdm import tqdm

    return tqdm(
        batches, total=total, desc=f"epoch {epoch + 1}/{s.epochs}", leave=False, file=sys.stderr
    )


def split_metrics(
    task: Task, split: Split, s: TrainerConfig, device: torch.device
) -> dict[str, Any]:
    """The task's metrics over a whole split, model in eval mode, no gradients."""
    batches: Iterator[Batch] = split.batches(s.eval_batch_size)
    if s.limit_eval_batches:
        batches = itertools.islice(batches, s.limit_eval_batches)
    task.model.eval()
    try:
        with torch.no_grad(), autocast(device, s.precision):
            return task.evaluate(batches)
    finally:
        task.model.train()


class FitLoop:
    """The fit loop of one task: epochs of training steps and validation (`fit`); the pieces
    are built elsewhere (build.py, dlrun.run.Run) and handed in."""

    def __init__(
        self,
        task: Task,
        data: DataBundle,
        opt: Optimization,
        settings: TrainerConfig,
        device: torch.device,
        write_checkpoint: CheckpointWriter,
        stop: StopFlag,
        on_epoch_end: list[EpochCallback] | None = None,
        on_log: list[StepCallback] | None = None,
        hooks: LoopHooks | None = None,
        seed: int = 0,
        user_hooks: Hooks | None = None,
        run_dir: Path | None = None,
    ) -> None:
        # settings: the trainer config with its `auto`s resolved (TrainerConfig.resolved)
        self.task, self.data, self.opt, self.s, self.seed = task, data, opt, settings, seed
        self.device, self._write_checkpoint, self.stop = device, write_checkpoint, stop
        self.on_epoch_end = on_epoch_end or []
        self.hooks = hooks or LoopHooks()
        self.user_hooks = user_hooks or Hooks()  # hooks=[...]: the user's (dlrun/hooks.py)
        self.run_dir = run_dir or Path(".")
        self.ctx: HookContext | None = None  # made when fit starts
        self._nonfinite: Tensor | None = None  # deferred finiteness flag (finite_check_every > 1)
        self._checkpoint_due = (
            False  # checkpoint_every_steps reached, waiting for an optimizer step
        )
        self.step_log = _StepLog(on_log or [], settings.log_every_n_steps)
        self.monitor_mode = task.monitor_mode(settings.monitor)
        self.stop_metric = settings.early_stopping.metric or settings.monitor
        # refuse an unknown early-stopping metric up front; its direction is the task's
        self.stop_mode = task.monitor_mode(self.stop_metric, "trainer.early_stopping.metric")
        # Fixed for the process's life; read once, not per step (an environment read costs ~1 us).
        self.world_size = distributed.world_size()
        self._clear_grads = {name: grad_clearer(o) for name, o in opt.optimizers.items()}
        self._epoch_lr = self._lr()

    def hook_context(self, state: LoopState) -> HookContext:
        """What the user's hooks see (one object for the fit, updated as it goes)."""
        return HookContext(
            model=distributed.unwrap(self.task.model),
            task=self.task,
            optimizers=self.opt.optimizers,
            schedulers=self.opt.schedulers,
            state=state,
            run_dir=self.run_dir,
            max_epochs=self.s.epochs,
        )

    def _call(self, stage: str, metrics: dict[str, Any] | None = None) -> None:
        if self.user_hooks.stages[stage]:
            assert self.ctx is not None
            self.ctx.metrics = metrics if metrics is not None else {}
            self.user_hooks.call(stage, self.ctx)

    def fit(self, state: LoopState) -> LoopState:
        """Train from `state` until the last epoch or early stopping; checkpoints every epoch."""
        self.ctx = self.hook_context(state)
        self._call("on_fit_start")
        while state.epoch < self.s.epochs and not state.early_stopped:
            self._call("on_epoch_start")
            started = time.perf_counter()
            # history's lr: the rate this epoch trains with (its first step's, for a per-step
            # schedule), not the one the epoch-end scheduler step sets for the next epoch
            self._epoch_lr = self._lr()
            try:
                train_logs = self.train_one_epoch(state)
            except torch.OutOfMemoryError:
                raise TrainingFailed(
                    f"out of memory at epoch {state.epoch + 1} step "
                    f"{state.batch_in_epoch + 1}: lower trainer.batch_size "
                    f"(now {self.s.batch_size}) or use trainer.grad_accum; "
                    "the last good checkpoint is kept"
                ) from None
            seconds = time.perf_counter() - started
            with self.user_hooks.evaluating(self.ctx.model):  # ema: the averaged weights
                val = self.measure(self.data.val)
            for hook in self.hooks.after_validation:
                hook(state)
            self._call("on_validation_end", val)
            self._end_epoch(state, train_logs, val, seconds)
            if self._stop_requested():  # a signal during validation or the checkpoint
                self._interrupt(state)
        self._call("on_fit_end")
        return state

    def _epoch_batches(self, state: LoopState) -> tuple[Iterator[Batch], int]:
        """This epoch's remaining training batches (from `state.batch_in_epoch`, in the epoch's
        seeded order, this rank's share under torchrun) and the epoch's number of batches."""
        s, split = self.s, self.data.train
        order = epoch_order(len(split), self.seed, state.epoch, self.device)
        order = order[: samples_per_epoch(len(order), s.batch_size, s.drop_last)]
        order, batch_size = distributed.shard_order(order, s.batch_size)  # as is without torchrun
        total = num_batches(len(order), batch_size)
        if s.limit_train_batches:
            total = min(total, s.limit_train_batches)
        batches = itertools.islice(
            split.batches(batch_size, order, state.batch_in_epoch), total - state.batch_in_epoch
        )
        return batches, total

    def train_one_epoch(self, state: LoopState) -> dict[str, float]:
        s = self.s
        batches, total = self._epoch_batches(state)
        # Per-epoch sums stay on the device (no sync per step) and live in the state, so a
        # mid-epoch resume reports the same epoch averages as a run that never stopped.
        sums = state.epoch_sums = {
            k: v.to(self.device) if isinstance(v, Tensor) else v
            for k, v in state.epoch_sums.items()
        }
        self.step_log.start_epoch()
        self.task.model.train()
        for batch in _progress(batches, total, state.epoch, s):
            index = state.batch_in_epoch
            for hook in self.hooks.before_batch:
                batch = hook(batch)
            last_micro = (index + 1) % s.grad_accum == 0 or index + 1 == total
            for step in self._steps(batch):
                loss = self._backward_and_step(step, index, last_micro, state)
                if loss is None:  # a skipped non-finite step
                    continue
                loss_name = "loss" if step.optimizer == "model" else f"{step.optimizer}_loss"
                sums[loss_name] = sums.get(loss_name, 0.0) + loss
                for name, value in step.logs.items():
                    sums[name] = sums.get(name, 0.0) + value.detach().float()
            state.train_samples += next(iter(batch.values())).shape[0]  # not len(): ~2 us
            state.batch_in_epoch, state.batches_done = index + 1, state.batches_done + 1
            if self.step_log.callbacks:
                self.step_log(sums, state.batch_in_epoch, state.epoch * total + index + 1, self._lr)
            if self._nonfinite is not None and state.batches_done % s.finite_check_every == 0:
                self._check_deferred(state)
            self._call("on_batch_end")  # before a checkpoint, which saves the hooks' state
            if s.checkpoint_every_steps and state.batches_done % s.checkpoint_every_steps == 0:
                self._checkpoint_due = True
            # Checkpoints and stops wait for an optimizer step: gradients accumulated over part
            # of trainer.grad_accum's micro-batches are not saved, so a resume there is not exact.
            if self._checkpoint_due and last_micro:
                self.checkpoint(state)
                self._checkpoint_due = False
            for hook in self.hooks.after_batch:
                hook(state)
            if last_micro and self._stop_requested():
                self._interrupt(state)
        count, state.batch_in_epoch, state.epoch_sums = state.batch_in_epoch, 0, {}
        totals = {k: float(v) for k, v in sums.items()}  # one sync per epoch
        self.step_log.end_epoch(totals, count)
        logs = {k: v / max(count, 1) for k, v in totals.items()}
        return distributed.mean_over_ranks(logs)

    def _steps(self, batch: Batch) -> Iterator[Any]:
        """The task's step generator, with every forward pass under autocast if mixed precision."""
        steps = self.task.train_step(batch)
        if self.s.precision not in _DTYPES:  # full precision: no wrapper generator per step
            return steps
        return self._autocast_steps(steps)

    def _autocast_steps(self, steps: Iterator[Any]) -> Iterator[Any]:
        while True:
            with autocast(self.device, self.s.precision):
                step = next(steps, None)
            if step is None:
                return
            yield step

    def _backward_and_step(
        self, step: Any, index: int, last_micro: bool, state: LoopState
    ) -> float | Tensor | None:
        """Backward, and on the last micro-batch clip and step. Returns the loss for the epoch's
        running sum (a float where it was read on the host, else a device tensor), or None if the
        step was skipped."""
        scaler, s = self.opt.scaler, self.s
        # A non-finite loss stops before any optimizer step, so saved weights stay finite.
        if s.finite_check_every > 1:  # no sync: remember it on the device, read it every N steps
            loss_value: float | Tensor = step.loss.detach().float()
            bad = ~torch.isfinite(loss_value)
            self._nonfinite = bad if self._nonfinite is None else self._nonfinite | bad
            finite = True
        else:  # read on the host: free on CPU, a sync per step on a GPU (hence 50 there by default)
            loss_value = step.loss.item()
            finite = math.isfinite(loss_value)
        if not finite:
            if state.nonfinite_skipped < s.skip_nonfinite:
                state.nonfinite_skipped += 1
                log.warning(
                    f"skipped a non-finite loss at epoch {state.epoch + 1} step {index + 1} "
                    f"({state.nonfinite_skipped}/{s.skip_nonfinite} allowed)"
                )
                return None
            raise TrainingFailed(
                f"non-finite loss ({float(step.loss):.4g}) at epoch {state.epoch + 1} "
                f"step {index + 1}: lower optimizer.lr, set trainer.grad_clip, or check the data; "
                "the last good checkpoint is kept"
            )
        if index % s.grad_accum == 0 or s.grad_accum == 1:
            self._clear_grads[step.optimizer]()
        loss = step.loss / s.grad_accum if s.grad_accum > 1 else step.loss
        (scaler.scale(loss) if scaler else loss).backward()
        if not last_micro:
            return loss_value
        opt = self.opt.optimizers[step.optimizer]
        if s.grad_clip:
            if scaler:
                scaler.unscale_(opt)
            params = [p for group in opt.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, s.grad_clip)
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        state.optimizer_steps += 1
        sched = self.opt.schedulers.get(step.optimizer)
        if sched and sched[1] == "step":
            sched[0].step()
        return loss_value

    def measure(self, split: Split) -> dict[str, Any]:
        """split_metrics of the model as it is now (under torchrun: on rank 0, shared with all)."""
        return distributed.on_main(
            lambda: split_metrics(self.task, split, self.s, self.device), self.task
        )

    def _end_epoch(
        self, state: LoopState, train_logs: dict[str, float], val: dict[str, Any], seconds: float
    ) -> None:
        value = float(val[self.s.monitor])
        for sched, interval in self.opt.schedulers.values():
            if interval == "epoch":
                step_after_epoch(sched, value)  # scheduler=plateau steps on the monitored value
        state.epoch += 1
        state.train_seconds += seconds
        improved = is_better(value, state.best_value, self.monitor_mode) or _ties_lower_loss(
            value, val, state
        )
        if improved:
            state.best_value, state.best_epoch = value, state.epoch
            state.best_val = {k: v for k, v in val.items() if isinstance(v, int | float)}
        self._early_stopping(state, val, improved)
        row = {
            "epoch": state.epoch,
            **{f"train_{k}": v for k, v in train_logs.items()},
            **{f"val_{k}": v for k, v in val.items() if isinstance(v, int | float)},
            "lr": self._epoch_lr,
            "seconds": round(seconds, 4),
        }
        state.history.append(row)
        self._call("on_epoch_end", row)  # before the checkpoint, which saves the hooks' state
        if self.ctx is not None and self.ctx.stop_reason and state.early_stopped:
            log.info(f"stopped by a hook: {self.ctx.stop_reason}")
            self.ctx.stop_reason = None
        self.checkpoint(state, best=improved)  # one write: best.pt, if improved, is the same file
        self._log_epoch(row, improved)
        for callback in self.on_epoch_end:
            callback(state, row)

    def _lr(self) -> float:
        return next(iter(self.opt.optimizers.values())).param_groups[0]["lr"]

    def _early_stopping(self, state: LoopState, val: dict[str, Any], best: bool) -> None:
        """`best`: this epoch became the best one; watching the monitored metric, a tie won on
        validation loss counts as progress too (a small validation set's accuracy saturates
        long before the model has converged)."""
        if not self.s.early_stopping.patience:
            return
        value = float(val[self.stop_metric])
        tie_won = (
            best and self.stop_metric == self.s.monitor and not self.s.early_stopping.min_delta
        )
        if tie_won or is_better(
            value,
            state.stop_best,
            self.stop_mode,
            self.s.early_stopping.min_delta,
        ):
            state.stop_best, state.bad_epochs = value, 0
        else:
            state.bad_epochs += 1
            if state.bad_epochs >= self.s.early_stopping.patience:
                state.early_stopped = True
                log.info(
                    f"early stopping: val {self.stop_metric} has not improved for "
                    f"{state.bad_epochs} epochs"
                )

    def _log_epoch(self, row: dict[str, Any], improved: bool) -> None:
        shown = [f"epoch {row['epoch']}/{self.s.epochs}"]
        shown += [f"{k} {v:.4g}" for k, v in row.items() if k.startswith("train_")]
        shown += [
            f"{k} {row[k]:.4g}"
            for k in dict.fromkeys([f"val_{self.s.monitor}", "val_loss"])
            if k in row
        ]
        shown += [f"lr {row['lr']:.3g}", f"{row['seconds']:.2f}s"]
        log.info("  ".join(shown) + ("  *" if improved else ""))

    def checkpoint(self, state: LoopState, best: bool = False) -> None:
        self._check_deferred(state)  # never write weights a non-finite step may have touched
        self._write_checkpoint(state, best=best)

    def _check_deferred(self, state: LoopState) -> None:
        if self._nonfinite is not None and bool(self._nonfinite):
            raise TrainingFailed(
                f"non-finite loss in the {self.s.finite_check_every} steps before epoch "
                f"{state.epoch + 1} step {state.batch_in_epoch}: lower optimizer.lr, set "
                "trainer.grad_clip, or check the data (trainer.finite_check_every=1 stops at the "
                "exact step); the last good checkpoint is kept"
            )

    def _stop_requested(self) -> bool:
        """SIGINT/SIGTERM seen (under torchrun: on any rank, so all stop at the same step)."""
        if self.world_size == 1:
            return self.stop.requested
        # The all-reduced number alone decides: a signal that lands on this rank just after the
        # all-reduce (its handler runs as the wait returns) must wait for the next step boundary,
        # or this rank would stop one step before its peers and leave them in a collective.
        agreed = distributed.max_over_ranks(self.stop.signum or 0)
        self.stop.adopt(agreed)
        return agreed > 0

    def _interrupt(self, state: LoopState) -> None:
        self.checkpoint(state)
        raise Interrupted(self.stop.name, self.stop.exit_code)
