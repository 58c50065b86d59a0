"""Everything dlrun adds to Hydra and OmegaConf, and every Hydra internal it touches, in one
module. Nothing here happens at import: the start-up (dlrun/startup.py) calls `install()` for
the command, `installed()` for `dlrun.train` (which puts everything back afterwards), and a
sweep's worker process installs the same on receiving its task (startup.HydraTask).

What is installed:
- resolvers the config tree uses: `dlrun_uid`, `dlrun_now`, `dlrun_name` (run-folder names),
  `dlrun_run_dir`
  (a resumed run's own folder), `dlrun_sweep_dir` (sweep.resume), `dlrun_help` (--help text);
- a check of hydra.callbacks before Hydra builds them (its Callbacks class gets a checking
  subclass: Hydra offers no hook for this);
- for the command only: Hydra's first composition, done only to read `hydra.mode`, skipped where
  the command line cannot set one (`skip_mode_composition`).
No torch here.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlrun import clock, exits
from dlrun.errors import DlrunError

_RESOLVERS = (
    "dlrun_uid",
    "dlrun_now",
    "dlrun_run_dir",
    "dlrun_sweep_dir",
    "dlrun_help",
    "dlrun_name",
)


def _now(pattern: str) -> str:
    return time.strftime(pattern, time.localtime(clock.started()))


def _run_dir(default: str, *, _root_: DictConfig) -> str:
    """hydra.run.dir: the resumed run's own folder for resume=PATH|auto, else a new folder."""
    from dlrun import resume

    def config() -> dict:
        current = {k: _root_[k] for k in _root_ if k != "hydra"}
        return OmegaConf.to_container(OmegaConf.create(current), resolve=True)

    if _root_.get("mode") in resume.READ_ONLY_MODES:  # they write a new folder, never resume one
        return default
    try:
        folder = resume.run_folder_for(_root_.get("resume"), config)
    except DlrunError as err:  # raised while Hydra picks the folder: through to the door
        exits.refuse(err)
    return str(folder) if folder else default


def _sweep_dir(root: str, fresh: str, resume: bool, overrides: Any) -> str:
    from dlrun.sweep import sweep_dir

    return sweep_dir(root, fresh, resume, overrides)


def _name_suffix(name: object) -> str:
    """`-<name>` for a run or sweep folder with `name=`; nothing for a name that could leave the
    folder (validation refuses it in one line before the run starts)."""
    from dlrun.schema import RUN_NAME

    return f"-{name}" if name is not None and RUN_NAME.fullmatch(str(name)) else ""


def _help_text(part: str) -> str:
    """Hydra's help page (conf/hydra/help/dlrun.yaml) takes its text from dlrun/help.py."""
    from dlrun.help import text

    return text(part)


def _register_resolvers() -> None:
    OmegaConf.register_new_resolver("dlrun_uid", clock.run_uid, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("dlrun_now", _now, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("dlrun_run_dir", _run_dir, replace=True)
    # cached on its literal arguments: every job of a sweep gets the folder the parent resolved
    OmegaConf.register_new_resolver("dlrun_sweep_dir", _sweep_dir, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("dlrun_help", _help_text, replace=True)
    OmegaConf.register_new_resolver("dlrun_name", _name_suffix, replace=True)


def _checking_callbacks(base: type) -> type:
    """Hydra's Callbacks class, checking hydra.callbacks before any is built."""

    class CheckedCallbacks(base):  # type: ignore[misc, valid-type]
        dlrun_checked = True

        def __init__(self, config: DictConfig | None = None, **kwargs: Any) -> None:
            if config is not None:
                from dlrun.callbacks import check_hydra_callbacks

                try:
                    check_hydra_callbacks(config)
                except DlrunError as err:
                    exits.refuse(err)
            super().__init__(config, **kwargs)

    return CheckedCallbacks


def is_installed() -> bool:
    import hydra._internal.hydra as hydra_internal

    return getattr(hydra_internal.Callbacks, "dlrun_checked", False)


def install() -> None:
    """Install dlrun's resolvers and callback check (idempotent)."""
    import hydra._internal.hydra as hydra_internal

    _register_resolvers()
    if not is_installed():
        hydra_internal.Callbacks = _checking_callbacks(hydra_internal.Callbacks)


def uninstall() -> None:
    """Put Hydra and OmegaConf back as they were before `install()`."""
    import hydra._internal.hydra as hydra_internal

    for name in _RESOLVERS:
        if OmegaConf.has_resolver(name):
            OmegaConf.clear_resolver(name)
    if is_installed():
        hydra_internal.Callbacks = hydra_internal.Callbacks.__mro__[1]
    restore_mode_composition()


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """dlrun's extensions for the duration of a block; nested blocks keep the outer ones."""
    if is_installed():
        yield
        return
    install()
    try:
        yield
    finally:
        uninstall()


# --- used by the engine: Hydra's own lookup, a scoped OmegaConf resolver -------------------------
def locate(path: str) -> Any:
    """The object `path` names, found exactly as Hydra's instantiate finds it (attributes before
    submodules: `torchvision.models.alexnet` is the function, not the module)."""
    from hydra._internal.utils import _locate

    return _locate(path)


@contextlib.contextmanager
def env_lookups_as_written(as_written: Callable[..., str]) -> Iterator[None]:
    """Inside the block `${oc.env:...}` resolves through `as_written` (the text itself), so a
    secret read from the environment is never resolved into a recorded config; OmegaConf's own
    resolver is back afterwards."""
    from omegaconf.resolvers import oc

    OmegaConf.register_new_resolver("oc.env", as_written, replace=True)
    try:
        yield
    finally:
        OmegaConf.register_new_resolver("oc.env", oc.env, replace=True)


# --- the command's config composition -------------------------------------------------------
# Where a command can bring in a `hydra.mode` that dlrun's own configs do not set: an override of
# it, an experiment file, or config files of the user's (a config dir, a search path, plugins).
_MODE_SOURCES = ("hydra.mode", "experiment=", "hydra.searchpath", "--config-dir", "-cd", "plugins=")
_MODE_SOURCES += ("--config-name", "-cn")
_hydras_get_mode: Any = None


def skip_mode_composition(args: list[str]) -> None:
    """Hydra composes the whole config once just to read `hydra.mode`, then again to run: 0.15-0.3
    s of every command (a third of an in-process smoke run). dlrun's configs never set hydra.mode
    (tests/unit/test_hydra_mode.py keeps it so), so unless the command line could bring one in,
    the mode is what -m says and the first composition is skipped."""
    from hydra._internal.hydra import Hydra

    global _hydras_get_mode
    if _hydras_get_mode is None:
        _hydras_get_mode = Hydra.get_mode
    bring_mode = any(a.lstrip("+").startswith(_MODE_SOURCES) for a in args)
    Hydra.get_mode = _hydras_get_mode if bring_mode else _mode_from_the_command_line


def restore_mode_composition() -> None:
    from hydra._internal.hydra import Hydra

    if _hydras_get_mode is not None:
        Hydra.get_mode = _hydras_get_mode


def _mode_from_the_command_line(self: Any, config_name: str | None, overrides: list[str]) -> None:
    return None  # Hydra then runs (or, with -m, multiruns) as the command line says


# --- running ------------------------------------------------------------------------------------
def run_command(task: Callable[[DictConfig], Any], config_dir: str) -> None:
    """Hydra's command-line app (sys.argv: overrides, -m, --cfg, --config-dir...) around `task`."""
    import hydra

    hydra.main(version_base="1.3", config_path=config_dir, config_name="config")(task)()


def run_once(
    task: Callable[[DictConfig], Any], config_dir: str, user_dir: str | None, overrides: list[str]
) -> str:
    """One run through Hydra.run, as the command runs it (same callbacks, run folder, .hydra/),
    with `user_dir` after dlrun's conf/ as --config-dir puts it; returns the run's folder. Hydra
    is cleared afterwards."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.utils import setup_globals
    from hydra.types import RunMode

    if GlobalHydra.instance().is_initialized():
        raise DlrunError("dlrun.train cannot run inside another Hydra app or compose block")
    search_path = create_config_search_path(f"file://{config_dir}")
    if user_dir is not None:
        # where --config-dir puts it: after dlrun's conf/, whose config.yaml stays the primary
        search_path.prepend(
            provider="command-line",
            path=f"file://{os.path.abspath(user_dir)}",
            anchor=SearchPathQuery(provider="schema"),
        )
    try:
        setup_globals()
        hydra = Hydra.create_main_hydra2(task_name="dlrun", config_search_path=search_path)
        if hydra.get_mode("config", overrides) == RunMode.MULTIRUN:
            raise DlrunError("dlrun.train runs one job: a sweep is `dlrun -m ...`")
        ran = hydra.run(config_name="config", task_function=task, overrides=overrides)
        return str(ran.hydra_cfg.hydra.runtime.output_dir)
    finally:
        GlobalHydra.instance().clear()
