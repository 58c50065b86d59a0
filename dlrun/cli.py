"""The `dlrun` command: a door. It reads the command line, goes through the one start-up
(dlrun/startup.py), lets Hydra compose and run the engine (dlrun/engine.py), and maps how that
ended to one line and an exit code (dlrun/exits.py).

This module must not import torch: `dlrun --help`, `--cfg job` and shell completion stay fast.
"""

from __future__ import annotations

import sys

from dlrun import exits, hydra_checks, hydra_ext, interrupts, startup, sweep, typed_options
from dlrun.errors import DlrunError
from dlrun.startup import argv_plugins, config_dir

__all__ = ["main", "config_dir", "argv_plugins"]


def _answered_without_hydra(args: list[str]) -> bool:
    """`dlrun list`, `dlrun --help` and `dlrun --version`: printed here, without composing a
    config."""
    if "--version" in args:  # Hydra's own flag would print Hydra's version
        from dlrun import __version__

        print(f"dlrun {__version__}")
        return True
    if args[:1] == ["list"]:
        from dlrun.help import render_registry

        print(render_registry(argv_plugins(args[1:])))
        return True
    if ("--help" in args or "-h" in args) and not any(
        a.startswith("--config-dir") or a == "-cd" for a in args
    ):
        from dlrun.help import render  # fast path; Hydra's own help is ~2 s (see dlrun/help.py)

        print(render(config_dir(), [a for a in args if not a.startswith("-")]))
        return True
    return False


def cross_validation_sweep(args: list[str]) -> list[str]:
    """`data.cv=K` without data.fold: the K folds as one sweep (`-m data.fold=range(K)`), whose
    summary gives each metric's mean ± std over the folds (dlrun/summary.py)."""
    folds = [a.split("=", 1)[1] for a in args if a.startswith("data.cv=")]
    if not folds or not folds[-1].isdigit() or any(a.startswith("data.fold=") for a in args):
        return args
    multirun = [] if {"-m", "--multirun"} & set(args) else ["-m"]
    return [*multirun, *args, f"data.fold=range({int(folds[-1])})"]


def _run_hydra(args: list[str]) -> None:
    """Hydra's command line around the engine; a stopped or crashed sweep is summarised."""
    hydra_ext.skip_mode_composition(args)
    try:
        hydra_ext.run_command(startup.HydraTask(), config_dir())
    except sweep.SweepStopped as stop:
        summary = sweep.finish(stop.sweep_dir)
        where = f" (summary: {summary.md_path})" if summary else ""
        exits.leave_with(f"{stop.message}{where}", stop.code)
    except SystemExit as exit_:  # a sweeper that crashed after its jobs (Hydra printed why)
        if exit_.code and sweep.started_sweep() and sweep.finish(sweep.started_sweep()):
            code = exit_.code if isinstance(exit_.code, int) else 1
            exits.leave_with(sweep.failure_line() or "the sweeper failed", code)
        raise


def main() -> None:
    """Console-script entry point; a multirun exits non-zero when any job did not complete."""
    args = sys.argv[1:]
    try:
        if _answered_without_hydra(args):
            interrupts.release()
            return
        sys.argv[1:] = args = cross_validation_sweep(args)
        with startup.session(args):
            typed_options.check(args, config_dir())  # after the plugins' options are registered
            hydra_checks.refuse_search_path_in_files(
                config_dir(),
                typed_options.user_config_dirs(args),
                typed_options.config_name(args),
                args,
            )
            _run_hydra(args)
    except exits.Refused as refused:
        exits.leave(refused.error)
    except DlrunError as err:
        exits.leave(err)
    except KeyboardInterrupt:  # outside the training loop (start-up), or a second Ctrl-C
        exits.leave_interrupted_at_start_up()
    failed = sweep.failure_line()
    if failed:
        exits.leave_with(failed, 1)


if __name__ == "__main__":
    main()
