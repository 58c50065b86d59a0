"""`python -m dlrun` and the `dlrun` console script.

A Ctrl-C while the command's modules load and Hydra composes the config is held until the job
starts, then ends the command in one line with exit 130 like one that lands later
(dlrun/interrupts.py). When the command is done, the process leaves at once: the exit handlers
run and the output is flushed, but the interpreter does not tear down torch's module graph one
object at a time, which took 1-3 s of every run here (benchmarks/startup.py).
"""

import atexit
import logging
import os
import sys
import threading

from dlrun import interrupts


def main() -> None:
    interrupts.hold()  # until the job starts (dlrun/interrupts.py says why)
    from dlrun.cli import main as run_command

    try:
        run_command()
    except SystemExit as exit_:
        _exit_now(exit_.code)
    except BrokenPipeError:  # `dlrun list | head`: the reader left; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush
        _exit_now(1)
    _exit_now(0)


def _exit_now(code: object) -> None:
    """Leave at once when nothing else runs: exit handlers, flushed output and closed log files
    as a normal exit, then os._exit, skipping the slow interpreter teardown. Where another
    non-daemon thread is alive (joblib's loky manager after a parallel sweep, which stops only
    through the interpreter's own shutdown hooks) or under torchrun (a rank that left at once
    would have its peers stopped by torchrun's agent before they finish their exit path), the
    ordinary exit: every launcher still ends."""
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython's own, at exit
    if others or run_exit_handlers is None or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        sys.exit(code)
    if isinstance(code, str):  # sys.exit("message") prints it and exits 1
        print(code, file=sys.stderr)
        code = 1
    run_exit_handlers()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


if __name__ == "__main__":
    main()
