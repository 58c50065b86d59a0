"""The one place that maps a problem to what the `dlrun` command prints and its exit code.

Engine code raises DlrunError (or Interrupted) and never exits. Inside Hydra, where an ordinary
exception would be swallowed (a callback's becomes a warning) or printed as a traceback (a job's,
a resolver's), it travels as `Refused`, a BaseException that Hydra and OmegaConf let through; the
door unwraps it: the command prints one line and exits, `dlrun.train` raises the DlrunError.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from dlrun.errors import DlrunError, Interrupted

T = TypeVar("T")

INTERRUPTED_AT_START_UP = 130  # Ctrl-C before the job started: 128 + SIGINT


class Refused(BaseException):
    """A DlrunError on its way out through Hydra's machinery to the door that started it."""

    def __init__(self, error: DlrunError) -> None:
        super().__init__(str(error))
        self.error = error

    def __reduce__(self) -> tuple:  # parallel launchers send it back from a worker process
        return (Refused, (self.error,))


def refuse(error: DlrunError) -> NoReturn:
    """Stop the command (or API call) with `error`, from anywhere inside Hydra."""
    raise Refused(error) from None


def carried(function: Callable[..., T]) -> Callable[..., T]:
    """`function` with its DlrunErrors carried through Hydra as Refused."""

    def call(*args: Any, **kwargs: Any) -> T:
        try:
            return function(*args, **kwargs)
        except DlrunError as err:
            refuse(err)

    return call


def line(error: DlrunError) -> str:
    """The one line the command prints for `error`."""
    prefix = "dlrun: " if isinstance(error, Interrupted) else "dlrun: error: "
    return f"{prefix}{error}"


def leave(error: DlrunError) -> NoReturn:
    """Print `error` as one line and exit with its code (the command's doors only); with
    HYDRA_FULL_ERROR=1, its traceback first."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        traceback.print_exception(error)
    print(line(error), file=sys.stderr)
    raise SystemExit(error.exit_code)


def leave_with(message: str, code: int) -> NoReturn:
    """A sweep's end that is not one DlrunError (stopped, crashed, jobs that failed)."""
    print(f"dlrun: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def leave_interrupted_at_start_up() -> NoReturn:
    print("dlrun: interrupted (SIGINT); any checkpoint already written is kept", file=sys.stderr)
    raise SystemExit(INTERRUPTED_AT_START_UP)
