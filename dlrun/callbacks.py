"""Hydra callbacks (configured under hydra.callbacks in conf/config.yaml). No torch imports here."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def check_writable(folder: str, key: str) -> None:
    """Exit with a one-line error unless `folder` can be created and written."""
    path = Path(folder)
    probe = path / f".dlrun-write-test-{uuid.uuid4().hex[:8]}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        print(
            f"dlrun: error: the output folder {folder} cannot be written ({err.strerror or err}): "
            f"choose a writable one with {key}=PATH",
            file=sys.stderr,
        )
        sys.exit(2)


class OutputGuard(Callback):
    """Refuse to start when the run or sweep folder cannot be written (before Hydra's own mkdir)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        check_writable(str(config.hydra.run.dir), "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        check_writable(str(config.hydra.sweep.dir), "hydra.sweep.dir")
