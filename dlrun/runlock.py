"""One owner per run folder: a live run holds `<run folder>/.dlrun.lock` with flock.

The kernel drops a flock when its process ends, however it ends, so a lock left by a crash is
recognisably stale (the file is there, nobody holds it) and the next run simply takes it. The
file says who holds it (pid, host, start time) for the refusal message. No torch imports.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from dlrun import safe_files
from dlrun.errors import DlrunError

LOCK_NAME = ".dlrun.lock"
_HELD: dict[Path, int] = {}  # run folder -> open, locked file descriptor (flock is per open file)


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096) or b"{}")
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError):
        return "a process that has not yet written its pid"


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def acquire(run_dir: str | Path, what: str = "hydra.run.dir") -> bool:
    """Hold `run_dir` for this process; False if it already does. A folder held by a live
    process is a DlrunError naming that process."""
    folder = Path(run_dir).resolve()
    if folder in _HELD or os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 holds it
        return False
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    while True:
        fd = safe_files.open_nofollow(path, os.O_RDWR | os.O_CREAT, 0o644)  # never a link
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise DlrunError(
                f"{what}={folder} is in use by a running dlrun ({holder}): wait for it to end or "
                "stop it, or use another folder"
            ) from None
        if _same_file(fd, path):
            break
        os.close(fd)  # its holder removed the file between our open and flock: take the new one
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(info).encode())
    _HELD[folder] = fd
    return True


def release(run_dir: str | Path) -> None:
    """Let go of `run_dir` (the file is removed while still locked, so no one else takes a
    lock on a file that is about to disappear)."""
    folder = Path(run_dir).resolve()
    fd = _HELD.pop(folder, None)
    if fd is None:
        return
    if _same_file(fd, folder / LOCK_NAME):
        (folder / LOCK_NAME).unlink(missing_ok=True)
    os.close(fd)


def release_all() -> None:
    for folder in list(_HELD):
        release(folder)
