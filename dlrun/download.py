"""Bounded downloads: torchvision fetches datasets and weights with urllib and no timeout.

Offline machines fail at once (no name resolution); the timeout bounds a stalled connection so a
run ends with a one-line error instead of hanging. Shared by data (datasets, AG_NEWS) and models
(pretrained weights), so it sits beside both rather than inside either.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

DOWNLOAD_TIMEOUT_S = 60  # seconds a connection may stall before the download fails


@contextlib.contextmanager
def socket_timeout(seconds: float = DOWNLOAD_TIMEOUT_S) -> Iterator[None]:
    """Set the default socket timeout for the block (urllib uses it when given none)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def last_line(err: BaseException) -> str:
    """The most specific line of an error message (torchvision's are several lines long)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__
