"""The one start-up and close that every door goes through (the command, `python -m dlrun`,
torchrun's ranks, `dlrun.train`), and the task function they all hand Hydra.

start-up: the clock, the thread tuner's first reading, installed plugins and the ones the
overrides name (so `model=tiny_net` composes), dlrun's Hydra extensions (dlrun/hydra_ext.py),
torchrun's process group; close: the process group and every run-folder lock this process holds,
then Hydra and OmegaConf as they were. No torch at import.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from dlrun import (
    clock,
    distributed,
    engine,
    exits,
    hydra_ext,
    registry,
    runlock,
    sweep,
    thread_tuner,
)


def config_dir() -> str:
    """conf/ ships inside the wheel as dlrun/conf; a source checkout keeps it at the top level."""
    packaged = Path(__file__).resolve().parent / "conf"
    if packaged.is_dir():
        return str(packaged)
    return str(Path(__file__).resolve().parent.parent / "conf")


def argv_plugins(args: Sequence[str]) -> list[str]:
    """Module names of a `plugins=[...]` override, read before Hydra composes the config, so that
    the short names they register can be chosen on the same command line (`model=tiny_net`)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    found: list[str] = []
    for arg in args:
        if arg.lstrip("+").startswith("plugins="):
            try:
                value = OverridesParser.create().parse_override(arg).value()
            except Exception:  # a malformed override: Hydra reports it in its own words
                continue
            options = value.list if hasattr(value, "list") else [value]  # a sweep: all options
            for option in options:
                found += [option] if isinstance(option, str) else [str(m) for m in option or []]
    return found


@contextlib.contextmanager
def session(overrides: Sequence[str]) -> Iterator[None]:
    """Around one command or `dlrun.train` call: start-up before, close after (however it ends)."""
    clock.start()
    thread_tuner.note_start()  # how busy the CPUs are while the command starts (no torch here)
    sweep.forget_outcome()  # a previous command in this process (the Python API, tests)
    with hydra_ext.installed():
        # before Hydra composes: installed entry points and the overrides' plugins=[...]
        registry.activate(argv_plugins(overrides))
        if distributed.launched():  # torchrun: join the process group, agree on the run folder
            distributed.setup()
        try:
            yield
        finally:
            distributed.teardown()
            runlock.release_all()


class HydraTask:
    """The task function every door hands Hydra: the engine's `run_config`, its DlrunErrors
    carried out through Hydra as exits.Refused. A parallel launcher pickles it into its worker
    processes: unpickled there, it installs dlrun's Hydra extensions first (the worker's
    start-up), before Hydra resolves the job's folder."""

    def __call__(self, cfg: DictConfig) -> Any:
        hydra_ext.install()  # a worker that got this task some other way
        return exits.carried(engine.run_config)(cfg)

    def __reduce__(self) -> tuple:
        return (_task_in_worker, ())


def _task_in_worker() -> HydraTask:
    hydra_ext.install()
    return HydraTask()
