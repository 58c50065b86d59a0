"""Ctrl-C while the command starts: noted, then raised once the job (or the sweep) has started.

A KeyboardInterrupt raised in the middle of an import or of Hydra's composition leaves objects
half-made, and the error they cause next hides the interrupt: seen here as a RuntimeError from a
dataclass's `__set_name__`, an AttributeError from an OmegaConf node, and Hydra's one-line report
of that AttributeError as a config error (exit 1). So the `dlrun` command holds SIGINT from its
first line until its job starts (about a second), or a sweep starts (its process may never run a
job itself): a Ctrl-C then is only noted, and `release()` raises it as an ordinary
KeyboardInterrupt at a point where nothing is half-made. (A sweep then composes every job's config
once more to check it, not held: a Ctrl-C in those few tenths of a second can still read as a
config error, exit 1.)
No torch here: the command imports this first.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_noted = False


def _note(signum: int, frame: FrameType | None) -> None:
    global _noted
    _noted = True


def hold() -> None:
    """From now on a SIGINT is noted instead of raised (main thread, default handler only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _note)


def release() -> None:
    """SIGINT raises KeyboardInterrupt again; one noted while held is raised now."""
    global _noted
    if signal.getsignal(signal.SIGINT) is _note:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if _noted:
        _noted = False
        raise KeyboardInterrupt
