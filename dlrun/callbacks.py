"""Hydra callbacks (configured under hydra.callbacks in conf/config.yaml). No torch imports here."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from dlrun import exits, registry, runlock
from dlrun.errors import DlrunError


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
    already holds one (it would be overwritten); resume= continues it instead."""
    if os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 holds the one shared folder
        return
    folder = Path(str(config.hydra.run.dir))
    runlock.acquire(folder)
    if (folder / "metrics.json").is_file() and not config.get("resume"):
        runlock.release(folder)
        raise DlrunError(
            f"hydra.run.dir={folder} already holds a run (metrics.json): continue it with "
            f"resume={folder}, or choose another folder"
        )


class OutputGuard(Callback):
    """Refuse to start when the run or sweep folder cannot be written (before Hydra's own mkdir),
    or when the run folder belongs to another run; hold it until the run ends."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        check_writable(str(config.hydra.run.dir), "hydra.run.dir")
        try:
            claim_run_dir(config)
        except DlrunError as err:
            exits.refuse(err)

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        runlock.release(str(config.hydra.run.dir))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        check_writable(str(config.hydra.sweep.dir), "hydra.sweep.dir")


def check_hydra_callbacks(config: DictConfig) -> None:
    """hydra.callbacks may name dlrun's own callbacks, registered ones and plugin code only."""
    registry.activate(config.get("plugins"))  # a config dir's `plugins` list
    node = OmegaConf.select(config, "hydra.callbacks")
    if not node:
        return
    try:
        plain = OmegaConf.to_container(node, resolve=True)
    except Exception:  # e.g. ${hydra:...} before Hydra is set up: instantiate fails on it too
        plain = OmegaConf.to_container(node, resolve=False)
    for name, params in plain.items():
        if params is None:  # switched off (hydra.callbacks.output_guard=null)
            continue
        key = f"hydra.callbacks.{name}"
        target = params.get("_target_") if isinstance(params, dict) else None
        registry.check_callback(target, key)
        registry.check_config(params, key)
