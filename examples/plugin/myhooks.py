"""A hook of your own: counts the calls of each stage of the training loop.
`dlrun plugins=[myhooks] hooks=[count_calls]`: the counts land in metrics.json under
hooks.count_calls, and resume=RUN continues them from the checkpoint.
"""

from typing import Any

import dlrun
from dlrun.hooks import HookContext


@dlrun.register("hook", "count_calls")  # makes `hooks=[count_calls]` an option
class CountCalls:
    def __init__(self, log_every: int = 0) -> None:
        self.log_every = log_every  # hooks.count_calls.log_every=N: print every N batches
        self.calls: dict[str, int] = {}

    def _count(self, stage: str) -> None:
        self.calls[stage] = self.calls.get(stage, 0) + 1

    def on_fit_start(self, ctx: HookContext) -> None:
        self._count("on_fit_start")

    def on_epoch_start(self, ctx: HookContext) -> None:
        self._count("on_epoch_start")

    def on_batch_end(self, ctx: HookContext) -> None:
        self._count("on_batch_end")
        if self.log_every and ctx.batch % self.log_every == 0:
            print(f"batch {ctx.batch}, lr {ctx.optimizers['model'].param_groups[0]['lr']}")

    def on_validation_end(self, ctx: HookContext) -> None:
        self._count("on_validation_end")  # ctx.metrics: this epoch's validation metrics

    def on_epoch_end(self, ctx: HookContext) -> None:
        self._count("on_epoch_end")  # ctx.metrics: the epoch's history row

    def on_fit_end(self, ctx: HookContext) -> None:
        self._count("on_fit_end")

    # optional: saved in every checkpoint (resume continues the counts), shown in metrics.json
    def state_dict(self) -> dict[str, Any]:
        return dict(self.calls)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.calls = dict(state)

    def record(self) -> dict[str, Any]:
        return dict(self.calls)
