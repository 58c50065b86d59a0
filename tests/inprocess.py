"""Run the real `dlrun` command inside the test process: the same `dlrun.cli.main` a shell runs,
with its output and exit code captured, and every piece of process state it may change put back.

A subprocess costs ~6 s of imports (torch, torch._dynamo, sklearn) on a 2-core machine; in-process
a smoke run costs well under a second once the worker has imported them. Tests where a process is
the point (signals from outside, SIGKILL, launchers, torchrun, the console script) still use one.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
from pathlib import Path


def _exit_code(exit_: SystemExit, err: io.StringIO) -> int:
    if exit_.code is None:
        return 0
    if isinstance(exit_.code, int):
        return exit_.code
    print(exit_.code, file=err)  # sys.exit("message") prints it and exits 1, as a process would
    return 1


@contextlib.contextmanager
def _process_state(cwd: Path, env: dict[str, str]):
    """Working folder, environment, argv, sys.path, logging and torch switches, restored after."""
    import torch
    from hydra.core.hydra_config import HydraConfig

    saved_env, saved_cwd, saved_argv = dict(os.environ), os.getcwd(), sys.argv
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    os.environ.update(env)
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv, sys.path[:] = saved_argv, saved_path
        for name in set(sys.modules) - saved_modules:  # a test's plugin module in its folder
            if str(getattr(sys.modules[name], "__file__", None) or "").startswith(str(cwd)):
                del sys.modules[name]
        for handler in root.handlers:
            if handler not in saved_handlers:
                handler.close()  # the run's dlrun.log
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        HydraConfig.instance().cfg = None
        torch.use_deterministic_algorithms(False)


def run_in_process(
    args: tuple[str, ...],
    cwd: Path,
    env: dict[str, str],
    failpoints: str | None = None,
    checksums: bool = True,
) -> subprocess.CompletedProcess:
    """`dlrun ARGS` in `cwd`, in this process; returns what a subprocess run would."""
    from dlrun import cli, faults
    from dlrun.data import ag_news, vision

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with _process_state(cwd, env):
        faults.arm(failpoints)
        vision.VERIFY_MD5 = ag_news.VERIFY_CHECKSUM = checksums
        sys.argv = ["dlrun", *args]
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                cli.main()
        except SystemExit as exit_:
            code = _exit_code(exit_, err)
        finally:
            faults.arm(None)
            vision.VERIFY_MD5 = ag_news.VERIFY_CHECKSUM = True
    return subprocess.CompletedProcess(["dlrun", *args], code, out.getvalue(), err.getvalue())
