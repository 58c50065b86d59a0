"""The only module that saves or loads torch files.

Saves are atomic (temporary file in the same folder, fsync, os.replace), so a kill at any instant
leaves the old or the new file, never a torn one. Loads use weights_only=True: a checkpoint cannot
run code. Checkpoints hold everything needed to continue bit-exactly on CPU: model, optimizers,
schedulers, grad scaler, loop position (epoch and batch within it), best metric and RNG states.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import random
import shutil
import signal
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlrun import safe_files
from dlrun.atomic import NEW_FILE_MODE, temp_beside
from dlrun.errors import DataError
from dlrun.faults import failpoint

FORMAT = "dlrun-checkpoint"
VERSION = 1


def save_atomic(obj: dict[str, Any], path: Path, copies: tuple[Path, ...] = ()) -> None:
    """Write `obj` to `path` so that readers only ever see a complete file.

    `copies` (same folder) get the same bytes, each replaced atomically before `path` is: the
    object is serialised and written once, and the copies are hard links of that one file (a
    plain copy where the file system has no links). Every save replaces its files with new
    ones, never writes into them, so a link never changes after it is made.
    """
    safe_files.make_dirs(path.parent)  # checkpoints/ planted as a link is refused
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            _inject_write_faults(f)
            f.flush()
            os.fsync(f.fileno())
        for copy in copies:
            _place_copy(Path(tmp), copy)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def _place_copy(written: Path, target: Path) -> None:
    """Atomically put the bytes of `written` (complete and fsynced) at `target`."""
    fd, tmp = temp_beside(target)
    os.close(fd)
    try:
        os.unlink(tmp)  # os.link needs a free name; mkstemp only reserved a unique one
        try:
            os.link(written, tmp)
        except OSError:  # no hard links here (some network or FAT file systems): copy instead
            shutil.copyfile(written, tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prune_epoch_copies(folder: Path, keep: int) -> None:
    """Delete all but the `keep` newest `epoch_N.pt` files, newest by number, not by name
    (epoch_1000 sorts before epoch_999 as text)."""
    copies = sorted(folder.glob("epoch_*.pt"), key=lambda p: int(p.stem.removeprefix("epoch_")))
    for old in copies[:-keep]:
        old.unlink()


def _inject_write_faults(f: Any) -> None:
    """Test-only: die half-way through a write, or fail as a full disk would (see dlrun.faults)."""
    if failpoint("checkpoint_crash"):
        f.truncate(f.tell() // 2)
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    if failpoint("checkpoint_enospc"):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def export_safetensors(state_dict: dict[str, torch.Tensor], path: Path) -> None:
    """Weights in the safetensors format (loads anywhere without running code),
    written atomically."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
    fd, tmp = temp_beside(path)  # a new file (O_EXCL): never a name planted as a link
    os.close(fd)
    save_file(tensors, str(tmp), metadata={"format": "dlrun"})
    os.chmod(tmp, NEW_FILE_MODE)  # safetensors creates its files 0600
    os.replace(tmp, path)


def load(path: str | Path, mmap: bool = False) -> dict[str, Any]:
    """Load a dlrun checkpoint; any unreadable or foreign file is a one-line DataError.
    mmap=True maps the tensors instead of reading them (to look at the loop state only)."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"checkpoint {file} does not exist: give a run folder or a .pt file")
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True, mmap=mmap)
    except (
        pickle.UnpicklingError,
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        ValueError,
        OSError,
    ) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(
            f"checkpoint {file} cannot be loaded safely ({reason}): "
            "it is truncated, corrupt or not a dlrun checkpoint"
        ) from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise DataError(f"checkpoint {file} is not a dlrun checkpoint (no '{FORMAT}' marker)")
    _refuse_unplain(obj.get("config", {}), f"checkpoint {file}: config")
    return obj


_PLAIN = (str, int, float, bool, type(None))


def _refuse_unplain(value: Any, where: str) -> None:
    """A checkpoint's config is plain containers of plain values, with text keys: it is read
    as data, never as objects (weights_only already refuses classes; this says so in words)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise DataError(f"{where} has a key {k!r} that is not text; it was altered")
            _refuse_unplain(v, f"{where}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _refuse_unplain(v, f"{where}[{i}]")
    elif not isinstance(value, _PLAIN):
        raise DataError(f"{where} holds a {type(value).__name__}, not plain data; it was altered")


def load_state_dict(file: Path, key: str = "weights") -> dict[str, torch.Tensor]:
    """Plain weights from a file the user named (`key` says which setting, for messages): a
    .safetensors file, or a torch file read with weights_only=True holding a state dict (or a
    dict with one under "state_dict"/"model", as training scripts save them)."""
    if not file.is_file():
        raise DataError(f"{key}={file} does not exist: give a .pt/.pth/.safetensors file")
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: Any = load_file(str(file))
        else:
            obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling refused, truncated, not a weights file
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"{key}={file} cannot be loaded as weights ({reason})") from None
    for inner in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(inner), dict):
            obj = obj[inner]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DataError(f"{key}={file} holds no state dict (names -> tensors)")
    return obj


def rng_state() -> dict[str, Any]:
    """Every RNG a run draws from, as plain containers and tensors (weights_only-loadable)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        # the 625 numbers as one tensor: pickled as one object, not 625
        "python": [version, torch.tensor(internal, dtype=torch.int64), gauss],
        "numpy": [
            kind,
            torch.from_numpy(keys.astype(np.int64)),
            int(pos),
            int(has_gauss),
            float(cached),
        ],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    if isinstance(internal, torch.Tensor):
        internal = internal.tolist()
    random.setstate((version, _to_tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_tuple(value: Any) -> Any:
    """random.setstate needs tuples where a round trip may have produced lists."""
    return tuple(_to_tuple(v) for v in value) if isinstance(value, list | tuple) else value


@contextlib.contextmanager
def fitting(where: str | Path, what: str = "model") -> Iterator[None]:
    """Around restoring a checkpoint's state: one line when it does not fit (missing or extra
    keys, wrong shapes or types: a file from another model, or a tampered one)."""
    try:
        yield
    except (RuntimeError, TypeError, ValueError, KeyError, IndexError, AttributeError) as err:
        reason = " ".join(str(err).split())[:300] or type(err).__name__
        raise DataError(
            f"checkpoint {where} does not fit the {what} its config builds ({reason}): it is "
            "from another model or was altered; use the run's own checkpoint"
        ) from None


def load_weights(module: Any, state: Any, where: str | Path, what: str = "model") -> None:
    """module.load_state_dict(state), or one line saying the checkpoint does not fit."""
    with fitting(where, what):
        if not isinstance(state, dict):
            raise TypeError(f"its {what} weights are a {type(state).__name__}, not a dict")
        module.load_state_dict(state)
