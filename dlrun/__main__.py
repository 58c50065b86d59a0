"""`python -m dlrun` and the `dlrun` console script.

The command's own modules (Hydra first) take a moment to load; a Ctrl-C that lands then is one
line and exit 130 too, like one that lands later (dlrun.cli handles those).
"""

import sys


def main() -> None:
    try:
        from dlrun.cli import main as run_command
    except KeyboardInterrupt:
        print("dlrun: interrupted (SIGINT) while starting; nothing was written", file=sys.stderr)
        sys.exit(130)
    run_command()


if __name__ == "__main__":
    main()
