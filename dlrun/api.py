"""dlrun from Python: `dlrun.train([...overrides])` and `dlrun.load(run_dir)`.

`train` runs Hydra's own machinery in-process (Hydra.run: the same config tree, callbacks, run
folder under outputs/ and .hydra/ files as the shell command), then leaves no global Hydra
state behind, so it can be called again in the same process, from a script or a notebook.
Errors are raised as dlrun's exceptions (dlrun.errors), never a sys.exit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrun.errors import ConfigError, DlrunError

if TYPE_CHECKING:
    from dlrun.predict.predictor import Predictor


@dataclass
class TrainResult:
    """What one run left: its folder, status and metrics (metrics.json as a dict in `record`)."""

    run_dir: Path
    status: str
    test: dict[str, Any] = field(default_factory=dict)
    best_val: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)

    def load(self, device: str = "auto") -> Predictor:
        """The trained model with its preprocessing (see dlrun.load)."""
        return load(self.run_dir, device)


@contextlib.contextmanager
def _restored_logging() -> Iterator[None]:
    """Hydra configures the root logger for the run (console + the run's dlrun.log); put the
    caller's logging back afterwards and close the run's log file."""
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in before[0]:
                handler.close()
        root.handlers[:], root.level = before[0], before[1]


@contextlib.contextmanager
def _start_time() -> Iterator[None]:
    """The run folder's name uses the start time: this call's, not the process's."""
    had = os.environ.get("DLRUN_START_TIME")
    if had is None:
        os.environ["DLRUN_START_TIME"] = str(time.time())
    try:
        yield
    finally:
        if had is None:
            os.environ.pop("DLRUN_START_TIME", None)


def _run_hydra(overrides: list[str]) -> Path:
    """One run through Hydra.run; returns its output folder."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import DictConfig

    from dlrun import cli

    folder: list[Path] = []

    def task(cfg: DictConfig) -> Any:
        from hydra.core.hydra_config import HydraConfig

        folder.append(Path(HydraConfig.get().runtime.output_dir))
        return cli._run(cfg)

    with initialize_config_dir(config_dir=cli.config_dir(), version_base="1.3"):
        hydra = GlobalHydra.instance().hydra
        assert hydra is not None
        hydra.run(config_name="config", task_function=task, overrides=overrides)
    return folder[0]


def train(overrides: Sequence[str] = ()) -> TrainResult:
    """Train as `dlrun OVERRIDES...` would; returns the run's folder and metrics.

    Raises dlrun.errors.DlrunError (ConfigError, DataError...) for a problem the user can fix.
    """
    if isinstance(overrides, str):
        raise TypeError('overrides is a list of strings, e.g. ["model=lenet", "data=mnist"]')
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    if GlobalHydra.instance().is_initialized():
        raise DlrunError("dlrun.train cannot run inside another Hydra app or compose block")
    try:
        with _start_time(), _restored_logging():
            run_dir = _run_hydra(list(overrides))
    except SystemExit as exit_:  # a Hydra callback refused to start (its line is printed)
        raise DlrunError(f"dlrun stopped before training (exit code {exit_.code})") from None
    except HydraException as err:  # an unknown option or a malformed override
        raise ConfigError(str(err).strip().splitlines()[0]) from None
    finally:
        GlobalHydra.instance().clear()
    return result(run_dir)


def result(run_dir: str | Path) -> TrainResult:
    """A run folder's record as a TrainResult."""
    path = Path(run_dir)
    record = json.loads((path / "metrics.json").read_text())
    return TrainResult(
        run_dir=path,
        status=record.get("status", "unknown"),
        test=record.get("test") or {},
        best_val=record.get("best_val") or {},
        record=record,
    )


def load(run: str | Path, device: str = "auto") -> Predictor:
    """A trained model with its preprocessing, from a run folder (its best checkpoint) or a .pt
    file: `dlrun.load(run).predict("new.csv")` takes what `dlrun mode=predict input=...` takes,
    or an array / tensor, or a list of strings (documents or image paths)."""
    from dlrun.predict.predictor import Predictor

    return Predictor.load(run, device)
