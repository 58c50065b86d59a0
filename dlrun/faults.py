"""Failpoints: test-only fault injection at named places in the real code path.

`arm("name:N[,name:N...]")` makes `failpoint(name)` return True on its N-th call in this process
(1-based), so a test can crash a checkpoint write half-way, fill the disk, run out of memory or
poison a batch while everything else runs for real. Only Python code can arm them (the tests'
in-process runner, or `python -m tests.proc`): no environment variable or config key reaches
them, so nothing a user or a file sets can switch them on. Unarmed: one falsy check per call.
"""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlrun.loop import LoopHooks

_targets: dict[str, int] = {}
_hits: dict[str, int] = {}


def arm(spec: str | None) -> None:
    """Arm the failpoints in `spec` ("name:N,..."), or disarm all with None; counts restart."""
    _targets.clear()
    _hits.clear()
    for item in (spec or "").split(","):
        if ":" in item:
            name, count = item.split(":", 1)
            _targets[name.strip()] = int(count)


def failpoint(name: str) -> bool:
    if not _targets or name not in _targets:
        return False
    _hits[name] = _hits.get(name, 0) + 1
    return _hits[name] == _targets[name]


def _before_batch(batch: dict[str, Any]) -> dict[str, Any]:
    import torch

    if failpoint("poison_batch"):  # a batch whose inputs are NaN
        batch = {**batch, "x": batch["x"] * float("nan")}
    if failpoint("train_oom"):  # what a CUDA allocator raises
        raise torch.OutOfMemoryError("CUDA out of memory (injected by a failpoint)")
    if failpoint("train_bug"):  # an exception dlrun did not foresee
        raise RuntimeError("injected by a failpoint")
    return batch


def _after_batch(state: object) -> None:
    if failpoint("kill_after_batch"):  # die as `kill -9` would, mid-epoch
        os.kill(os.getpid(), signal.SIGKILL)
    if failpoint("hold_after_batch"):  # a live run that holds its folder without using a core
        while True:  # until killed
            time.sleep(0.1)


def _after_validation(state: object) -> None:
    if failpoint("sigint_after_validation"):  # Ctrl-C between the last step and the epoch's end
        os.kill(os.getpid(), signal.SIGINT)


def loop_hooks() -> LoopHooks:
    """The training loop's hooks: the loop failpoints when any is armed, else none at all."""
    from dlrun.loop import LoopHooks

    if not _targets:
        return LoopHooks()
    return LoopHooks([_before_batch], [_after_batch], [_after_validation])
