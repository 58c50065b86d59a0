"""When the current command (or `dlrun.train` call) started: run-folder names and the record's
start-up time use it. Set by the start-up (dlrun/startup.py); no torch, no Hydra."""

from __future__ import annotations

import os
import time

_started_at = time.time()


def start() -> None:
    """A new command or API call starts now (several may run in one process)."""
    global _started_at
    _started_at = time.time()


def started() -> float:
    """When this command started (Unix time); under torchrun rank 0's time, which
    dlrun.distributed.setup shares through the environment so every rank names one folder."""
    return float(os.environ.get("DLRUN_START_TIME") or _started_at)
