"""dlrun from Python: `dlrun.train([...overrides])` and `dlrun.load(run_dir)`.

A door like the command: `train` goes through the same start-up (dlrun/startup.py) and engine
(dlrun/engine.py) in-process (Hydra.run: the same config tree, callbacks, run folder under
outputs/ and .hydra/ files as the shell command), then leaves no global Hydra state behind, so it
can be called again in the same process, from a script or a notebook. Errors are raised as
dlrun's exceptions (dlrun.errors), never a sys.exit.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrun.errors import ConfigError

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

    def load(self, device: str = "auto", plugins: Sequence[str] = ()) -> Predictor:
        """The trained model with its preprocessing (see dlrun.load)."""
        return load(self.run_dir, device, plugins)


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


def train(overrides: Sequence[str] = (), config_dir: str | Path | None = None) -> TrainResult:
    """Train as `dlrun [--config-dir CONFIG_DIR] OVERRIDES...` would, through the same start-up
    and engine (plugins=[...] in the overrides, installed plugins, run folder, locks); returns
    the run's folder and metrics.

    Raises dlrun.errors.DlrunError (ConfigError, DataError...) for a problem the user can fix.
    """
    if isinstance(overrides, str):
        raise TypeError('overrides is a list of strings, e.g. ["model=lenet", "data=mnist"]')
    from hydra.errors import HydraException

    from dlrun import exits, hydra_ext, startup

    overrides = list(overrides)
    if config_dir is not None and not Path(config_dir).is_dir():
        raise ConfigError(f"config_dir={str(config_dir)!r} is not a folder: pass your conf/ folder")
    try:
        with _restored_logging(), startup.session(overrides):
            user_dir = None if config_dir is None else str(config_dir)
            task, conf = startup.HydraTask(), startup.config_dir()
            run_dir = hydra_ext.run_once(task, conf, user_dir, overrides)
    except exits.Refused as refused:  # a refusal inside Hydra (a callback, a resolver, the job)
        raise refused.error from None
    except HydraException as err:  # an unknown option or a malformed override
        raise ConfigError(str(err).strip().splitlines()[0]) from None
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


def load(run: str | Path, device: str = "auto", plugins: Sequence[str] = ()) -> Predictor:
    """A trained model with its preprocessing, from a run folder (its best checkpoint) or a .pt
    file: `dlrun.load(run).predict("new.csv")` takes what `dlrun mode=predict input=...` takes,
    or an array / tensor, or a list of strings (documents or image paths). A model or data of
    your own needs its plugin modules named in `plugins` (a checkpoint never chooses code)."""
    from dlrun.predict.predictor import Predictor

    return Predictor.load(run, device, list(plugins))
