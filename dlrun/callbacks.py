"""Hydra callbacks (configured under hydra.callbacks in conf/config.yaml). No torch imports here."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from dlrun import exits, hydra_checks, resume, runlock, safe_files
from dlrun.errors import ConfigError, DlrunError


def check_writable(folder: str, key: str) -> None:
    """Refuse (one line, exit 2) unless `folder` can be created and written."""
    path = Path(folder)
    probe = path / f".dlrun-write-test-{uuid.uuid4().hex[:8]}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        exits.refuse(
            DlrunError(
                f"the output folder {folder} cannot be written ({err.strerror or err}): "
                f"choose a writable one with {key}=PATH"
            )
        )


def claim_run_dir(config: DictConfig) -> None:
    """One owner per run folder: hold it for this run, and refuse a new run in a folder that
    already holds one (it would be overwritten); resume= continues it instead. eval, predict and
    export write a folder of their own: never one holding a run, never inside the one they read.
    A resume that would be refused is refused here, before Hydra writes into the folder."""
    if os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 holds the one shared folder
        return
    folder = Path(str(config.hydra.run.dir))
    read_only = config.get("mode") in resume.READ_ONLY_MODES
    if read_only:
        _refuse_the_folder_read(config, folder)
    runlock.acquire(folder)
    try:
        if (folder / "metrics.json").is_file() and (read_only or not config.get("resume")):
            what = f"mode={config.get('mode')} writes a new folder" if read_only else "continue"
            fix = "" if read_only else f" continue it with resume={folder}, or"
            raise DlrunError(
                f"hydra.run.dir={folder} already holds a run (metrics.json) and {what}:"
                f"{fix} choose another folder"
            )
        resume.check_before_writing(config, folder)
        if config.get("resume") and (folder / ".hydra").is_dir():  # continued in place
            resume.keep_folder_as_it_was(folder)
    except DlrunError:
        runlock.release(folder)
        raise


def _refuse_the_folder_read(config: DictConfig, folder: Path) -> None:
    """A read-only command's folder may not lie inside the run folder it reads (ckpt=)."""
    ckpt = config.get("ckpt")
    if not ckpt:
        return
    read: Path | None = Path(str(ckpt))
    read = read if read.is_dir() else resume.run_folder(read)
    if read is None:  # a loose checkpoint file, in no run folder: there is no run to protect
        return
    inside = folder.resolve() == read.resolve() or read.resolve() in folder.resolve().parents
    if inside:
        raise DlrunError(
            f"mode={config.get('mode')} never writes into the run it reads (ckpt={ckpt}): "
            f"hydra.run.dir={folder} is inside it; leave hydra.run.dir out or choose another"
        )


@contextlib.contextmanager
def _fail_closed(key: str, folder: Any) -> Iterator[None]:
    """Hydra turns an exception in a callback into a warning and goes on: a check that could not
    be made (a folder that cannot be read, a checkpoint that does not parse) refuses instead."""
    try:
        yield
    except DlrunError as err:
        exits.refuse(err)
    except Exception as err:  # noqa: BLE001 (anything else: refused, never skipped)
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        exits.refuse(DlrunError(f"{key}={folder} could not be checked before writing ({reason})"))


class OutputGuard(Callback):
    """Refuse to start when the run or sweep folder cannot be written (before Hydra's own mkdir),
    or when the run folder belongs to another run; hold it until the run ends."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        with _fail_closed("hydra.run.dir", config.hydra.run.dir):
            # before Hydra writes .hydra/ and dlrun.log into a folder that may be a stranger's
            safe_files.refuse_links(str(config.hydra.run.dir), "hydra.run.dir")
        check_writable(str(config.hydra.run.dir), "hydra.run.dir")
        with _fail_closed("hydra.run.dir", config.hydra.run.dir):
            claim_run_dir(config)

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        runlock.release(str(config.hydra.run.dir))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        with _fail_closed("hydra.sweep.dir", config.hydra.sweep.dir):
            # the job folders inside it too: Hydra writes their .hydra/ before any job starts
            safe_files.refuse_links(str(config.hydra.sweep.dir), "hydra.sweep.dir")
        check_writable(str(config.hydra.sweep.dir), "hydra.sweep.dir")


def check_hydra_callbacks(config: DictConfig) -> None:
    """Every node Hydra builds itself (callbacks, launcher, sweeper, logging, search path) and
    the config's plugins, before Hydra builds any of them: dlrun/hydra_checks.py."""
    try:
        hydra_checks.check_hydra_nodes(config)
    except DlrunError:
        raise
    except Exception as err:  # noqa: BLE001 (a node that cannot be read is refused, not skipped)
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        raise ConfigError(f"the config's hydra nodes could not be checked ({reason})") from None
