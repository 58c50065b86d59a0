"""The `dlrun` command: Hydra composes the config, dlrun validates it, then runs one job.

This module must not import torch: `dlrun --help`, `--cfg job` and shell completion stay fast.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig, OmegaConf

from dlrun import (  # no torch at import
    callbacks,
    distributed,
    interrupts,
    registry,
    runlock,
    sweep,
    thread_tuner,
)
from dlrun.errors import DlrunError, Interrupted

if TYPE_CHECKING:
    from dlrun.resume import ResumePlan

log = logging.getLogger("dlrun")


def config_dir() -> str:
    """conf/ ships inside the wheel as dlrun/conf; a source checkout keeps it at the top level."""
    packaged = Path(__file__).resolve().parent / "conf"
    if packaged.is_dir():
        return str(packaged)
    return str(Path(__file__).resolve().parent.parent / "conf")


def _fail(err: DlrunError) -> None:
    prefix = "dlrun: " if isinstance(err, Interrupted) else "dlrun: error: "
    print(f"{prefix}{err}", file=sys.stderr)
    sys.exit(err.exit_code)


def _run_dir(default: str, *, _root_: DictConfig) -> str:
    """hydra.run.dir: the resumed run's own folder for resume=PATH|auto, else a new folder."""
    from dlrun import resume

    def config() -> dict:
        current = {k: _root_[k] for k in _root_ if k != "hydra"}
        return OmegaConf.to_container(OmegaConf.create(current), resolve=True)

    try:
        folder = resume.run_folder_for(_root_.get("resume"), config)
        return str(folder) if folder else default
    except DlrunError as err:  # raised while Hydra picks the folder: report it like any other
        _fail(err)
        raise


# A short random id in run-folder names, so two runs started in the same second never share one.
# Under torchrun every rank uses rank 0's id and start time (dlrun/distributed.py), so all ranks
# name the same single run folder.
OmegaConf.register_new_resolver(
    "dlrun_uid",
    lambda: os.environ.get("DLRUN_RUN_UID") or uuid.uuid4().hex[:6],
    use_cache=True,
    replace=True,
)
# When this command started (set again by every main() call, so two runs in one process get
# their own times); under torchrun rank 0's time, from the environment.
_started_at = time.time()


def command_start_time() -> float:
    """When this command started (Unix time); under torchrun, rank 0's start."""
    return float(os.environ.get("DLRUN_START_TIME") or _started_at)


OmegaConf.register_new_resolver(
    "dlrun_now",
    lambda pattern: time.strftime(pattern, time.localtime(command_start_time())),
    use_cache=True,
    replace=True,
)
OmegaConf.register_new_resolver("dlrun_run_dir", _run_dir, replace=True)


def _name_suffix(name: object) -> str:
    """`-<name>` for a run or sweep folder with `name=`; nothing for a name that could leave the
    folder (validation refuses it in one line before the run starts)."""
    from dlrun.schema import RUN_NAME

    return f"-{name}" if name is not None and RUN_NAME.fullmatch(str(name)) else ""


OmegaConf.register_new_resolver("dlrun_name", _name_suffix, replace=True)
# Hydra builds hydra.callbacks before any dlrun code sees the config: check them there.
callbacks.guard_hydra_callbacks(_fail)


def _help_text(part: str) -> str:
    """Hydra's help page (conf/hydra/help/dlrun.yaml) takes its text from dlrun/help.py."""
    from dlrun.help import text

    return text(part)


OmegaConf.register_new_resolver("dlrun_help", _help_text, replace=True)


def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.get().mode == RunMode.MULTIRUN


def _run(cfg: DictConfig, plan: ResumePlan | None = None) -> float | None:
    """Validate and run one job; a sweep job's `plan` was made by sweep.run_sweep_job."""
    from dlrun.validate import validate_config

    try:
        registry.activate(cfg.get("plugins"))  # a sweep job in another process imports them here
        validate_config(cfg)
        registry.check_config(cfg)  # every `_target_`, before anything is imported or built
        from dlrun.run import run_job  # imports torch: only once a job really runs

        interrupts.release()  # all imported: a Ctrl-C held since the command started is raised
        return run_job(cfg, plan)
    except DlrunError as err:
        if not isinstance(err, Interrupted) and not _is_multirun():  # sweeps record their own
            _record_failure(cfg, err)
        raise


def _record_failure(cfg: DictConfig, err: DlrunError) -> None:
    """A run that stopped on a config or data error leaves metrics.json (status failed, the
    error) in its folder, which Hydra made before the job started; a record the job itself wrote
    (a resumed run's, or a failure during training) is kept as it is."""
    from hydra.core.hydra_config import HydraConfig

    from dlrun.artifacts import RunArtifacts

    hc = HydraConfig.get()
    artifacts = RunArtifacts(Path(hc.runtime.output_dir))
    if artifacts.metrics_path.exists():
        return
    from dlrun.record import failed_before_training

    try:
        artifacts.write_metrics(
            failed_before_training(
                str(err),
                OmegaConf.select(cfg, "model._target_", default=""),
                OmegaConf.select(cfg, "data._target_", default=""),
                str(artifacts.run_dir),
                list(hc.overrides.task),
            )
        )
    except Exception:  # noqa: BLE001 (a full disk: the error line is printed anyway)
        log.debug("could not write the failure record", exc_info=True)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def _hydra_entry(cfg: DictConfig) -> float | None:
    if _is_multirun():  # failures are recorded and the sweep goes on (dlrun/sweep.py)
        return sweep.run_sweep_job(cfg, _run)
    try:
        return _run(cfg)
    except DlrunError as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        _fail(err)


# Where a command can bring in a `hydra.mode` that dlrun's own configs do not set: an override of
# it, an experiment file, or config files of the user's (a config dir, a search path, plugins).
_MODE_SOURCES = ("hydra.mode", "experiment=", "hydra.searchpath", "--config-dir", "-cd", "plugins=")
_MODE_SOURCES += ("--config-name", "-cn")


def _read_hydra_mode_only_where_it_can_be_set(args: list[str]) -> None:
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


def _mode_from_the_command_line(self: Any, config_name: str | None, overrides: list[str]) -> None:
    return None  # Hydra then runs (or, with -m, multiruns) as the command line says


_hydras_get_mode: Any = None


def _interrupted_at_start_up() -> None:
    print("dlrun: interrupted (SIGINT); any checkpoint already written is kept", file=sys.stderr)
    sys.exit(130)


def argv_plugins(args: list[str]) -> list[str]:
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


def _answered_without_hydra(args: list[str]) -> bool:
    """`dlrun list` and `dlrun --help`: printed here, without composing a config."""
    if args[:1] == ["list"]:
        from dlrun.help import render_registry

        try:
            print(render_registry(argv_plugins(args[1:])))
        except DlrunError as err:
            _fail(err)
        return True
    if ("--help" in args or "-h" in args) and not any(
        a.startswith("--config-dir") or a == "-cd" for a in args
    ):
        from dlrun.help import render  # fast path; Hydra's own help is ~2 s (see dlrun/help.py)

        print(render(config_dir(), [a for a in args if not a.startswith("-")]))
        return True
    return False


def main() -> None:
    """Console-script entry point; a multirun exits non-zero when any job did not complete."""
    global _started_at
    _started_at = time.time()
    thread_tuner.note_start()  # how busy the CPUs are while the command starts (no torch here)
    sweep.forget_outcome()  # a previous main() in this process (the Python API, tests)
    args = sys.argv[1:]
    try:
        if _answered_without_hydra(args):
            interrupts.release()
            return
        # before Hydra composes: installed entry points and the command line's plugins=[...]
        registry.activate(argv_plugins(args))
    except DlrunError as err:
        _fail(err)
    except KeyboardInterrupt:
        _interrupted_at_start_up()
    if distributed.launched():  # torchrun: join the process group, agree on the run folder
        distributed.setup()
    _read_hydra_mode_only_where_it_can_be_set(args)
    try:
        _hydra_entry()
    except sweep.SweepStopped as stop:
        summary = sweep.finish(stop.sweep_dir)
        where = f" (summary: {summary.md_path})" if summary else ""
        print(f"dlrun: error: {stop.message}{where}", file=sys.stderr)
        sys.exit(stop.code)
    except KeyboardInterrupt:  # outside the training loop (start-up), or a second Ctrl-C
        _interrupted_at_start_up()
    except SystemExit as exit_:  # a sweeper that crashed after its jobs (Hydra printed why)
        if exit_.code and sweep.started_sweep() and sweep.finish(sweep.started_sweep()):
            print(f"dlrun: error: {sweep.failure_line() or 'the sweeper failed'}", file=sys.stderr)
        raise
    finally:
        distributed.teardown()
        runlock.release_all()
    failed = sweep.failure_line()
    if failed:
        print(f"dlrun: error: {failed}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
