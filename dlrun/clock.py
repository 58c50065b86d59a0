"""When the current command (or `dlrun.train` call) started, and the short id of its run folder:
run-folder names and the record's start-up time use them. Set by the start-up
(dlrun/startup.py); under torchrun every rank takes rank 0's (dlrun/distributed.py), so all ranks
name one folder. No torch, no Hydra.
"""

from __future__ import annotations

import time
import uuid

_started_at = time.time()
_run_uid: str | None = None  # rank 0's under torchrun; else a new one per run folder


def start() -> None:
    """A new command or API call starts now (several may run in one process)."""
    global _started_at, _run_uid
    _started_at, _run_uid = time.time(), None


def share(started_at: float, run_uid: str) -> None:
    """Take another process's start time and run-folder id (torchrun: rank 0's)."""
    global _started_at, _run_uid
    _started_at, _run_uid = started_at, run_uid


def started() -> float:
    """When this command started (Unix time); under torchrun rank 0's time."""
    return _started_at


def run_uid() -> str:
    """A short random id in run-folder names, so two runs started in the same second never share
    one; under torchrun rank 0's."""
    return _run_uid or uuid.uuid4().hex[:6]
