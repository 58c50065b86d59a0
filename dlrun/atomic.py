"""Temporary files beside their destination, for atomic writes (write, then os.replace)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# The mode a plain open() would give a new file (0o666 less the umask). Read once: os.umask can
# only be read by setting it.
_UMASK = os.umask(0)
os.umask(_UMASK)
NEW_FILE_MODE = 0o666 & ~_UMASK


def temp_beside(path: Path, suffix: str = ".tmp") -> tuple[int, str]:
    """(fd, name) of a new temporary file in `path`'s folder, with the mode a plain open() would
    give it: mkstemp's 0600 would leave run files and shared data readable by their owner only."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.fchmod(fd, NEW_FILE_MODE)
    return fd, tmp
