"""`python -m tests.proc [--test-failpoints=SPEC] [--test-no-checksums] ARGS...`: the real `dlrun`
command in its own process, with test-only switches set from Python first (they are not
environment variables or config keys of the product). Used where a process is the point."""

from __future__ import annotations

import sys

from dlrun import __main__ as entry
from dlrun import faults
from dlrun.data import ag_news, vision


def main(argv: list[str]) -> None:
    while argv and argv[0].startswith("--test-"):
        option = argv.pop(0)
        if option.startswith("--test-failpoints="):
            faults.arm(option.split("=", 1)[1])
        elif option == "--test-no-checksums":
            vision.VERIFY_MD5 = ag_news.VERIFY_CHECKSUM = False
        else:
            raise SystemExit(f"tests.proc: unknown option {option}")
    sys.argv = ["dlrun", *argv]
    entry.main()  # what the `dlrun` script runs, exit path included


if __name__ == "__main__":
    main(sys.argv[1:])
