"""Every file dlrun creates, truncates or appends inside a run or sweep folder goes through here,
and no write follows a symbolic link.

A run or sweep folder may come from someone else (a downloaded run continued with resume=, a
sweep folder continued with sweep.resume=true): a link planted in it (`steps.csv -> ~/.bashrc`,
`checkpoints -> /elsewhere`) would make dlrun write where the folder's author chose. So:
  - a folder is checked once before anything is written into it (`refuse_links`): a folder that
    holds a link is refused in one line naming the member;
  - files are appended or rewritten in place only with O_NOFOLLOW (`open_nofollow`);
  - whole files are written to a new temporary file (O_EXCL) and renamed over the name
    (`write_atomic`): a rename replaces a link itself, never what it points to;
  - folders made for files (`make_dirs`) are refused when they turn out to be links.
No torch imports: the CLI's callbacks use it before a job starts.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dlrun.atomic import NEW_FILE_MODE, temp_beside
from dlrun.errors import DataError


def refuse_links(folder: str | Path, key: str = "hydra.run.dir") -> None:
    """DataError naming the first symbolic link inside `folder` (any depth, links not followed).
    The folder itself may be a link: the user typed its name (or Hydra chose it)."""
    root = Path(folder)
    if not root.is_dir():
        return
    for parent, dirs, files in os.walk(root):  # followlinks=False: a linked folder is listed
        for name in sorted([*dirs, *files]):
            member = Path(parent, name)
            if member.is_symlink():
                raise DataError(
                    f"{key}={root} holds a symbolic link {member.relative_to(root)} "
                    f"(-> {os.readlink(member)}): dlrun never writes through links in a run or "
                    "sweep folder; remove the link, or copy the folder without it"
                )
            _refuse_odd_file(root, member, key)


def _refuse_odd_file(root: Path, member: Path, key: str) -> None:
    """A FIFO, socket or device (reading one hangs or never ends), or a file hard-linked from
    elsewhere (appending to it writes the other name's file) is refused like a link. dlrun's
    own checkpoints share bytes by hard links (last.pt, best.pt): they are only ever replaced
    by a rename, never written into, so *.pt may have several names."""
    info = member.lstat()
    if stat.S_ISDIR(info.st_mode):
        return
    what = None
    if not stat.S_ISREG(info.st_mode):
        what = "a pipe, socket or device"
    elif info.st_nlink > 1 and member.suffix != ".pt":
        what = "a file with another name elsewhere (a hard link)"
    if what:
        raise DataError(
            f"{key}={root} holds {what}: {member.relative_to(root)}; dlrun writes only plain "
            "files of its own in a run or sweep folder: remove it, or copy the folder"
        )


def _refuse_link(path: Path) -> None:
    if path.is_symlink():
        raise DataError(
            f"{path} is a symbolic link (-> {os.readlink(path)}): dlrun never writes through "
            "links in a run or sweep folder; remove it"
        )


def make_dirs(path: str | Path) -> Path:
    """mkdir -p, refusing a folder that is (now) a link: mkdir accepts a link to a folder."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    _refuse_link(folder)
    return folder


def open_nofollow(path: str | Path, flags: int, mode: int = NEW_FILE_MODE) -> int:
    """os.open with O_NOFOLLOW: a link at `path` is a one-line DataError, never followed."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as err:
        if Path(path).is_symlink():  # ELOOP (Linux) or EMLINK (some BSDs): say it in words
            _refuse_link(Path(path))
        raise err from None


def open_append(path: str | Path, newline: str | None = "") -> object:
    """A text file opened for appending (created when absent), never through a link."""
    fd = open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    return os.fdopen(fd, "a", newline=newline)


def open_rewrite(path: str | Path) -> object:
    """An existing file opened to be rewritten in place ("r+"), never through a link."""
    return os.fdopen(open_nofollow(path, os.O_RDWR), "r+")


def write_atomic(path: str | Path, content: str | bytes) -> Path:
    """Write `content` as a new file renamed over `path`: readers see the old or the new file,
    and a link at `path` is replaced by the file, its target left untouched."""
    target = Path(path)
    _refuse_link(target.parent)
    fd, tmp = temp_beside(target)
    try:
        with os.fdopen(fd, "wb" if isinstance(content, bytes) else "w") as f:
            f.write(content)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
