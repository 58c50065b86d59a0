"""Errors that end a run with a one-line message instead of a traceback."""

from __future__ import annotations


class DlrunError(Exception):
    """A problem the user can fix: printed as one line, exit code `exit_code`."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(DlrunError):
    """A config value is missing, of the wrong type or out of range."""


class ImagesTooSmall(ValueError):
    """A model's convolutions and pooling shrink (C, H, W) images of `shape` to nothing.

    A model raises it (a plain ValueError about its input). The model knows neither its config
    name nor how the data chose the image size, so build.py names both in the one-line error."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = tuple(shape)
        super().__init__(f"{self.shape} images are too small for its convolutions and pooling")


class DataError(DlrunError):
    """Data cannot be found or read."""


class TrainingFailed(DlrunError):
    """Training stopped on a fault (non-finite loss, out of memory);
    the last good checkpoint is kept."""

    exit_code = 1


class Interrupted(DlrunError):
    """SIGINT/SIGTERM stopped the run at a step boundary after a checkpoint was written."""

    def __init__(self, signal_name: str, exit_code: int, what: str | None = None) -> None:
        super().__init__(
            f"{signal_name} received: {what or 'stopped at a step boundary and saved last.pt'}",
            exit_code,
        )
        self.signal_name = signal_name


class TrialPruned(DlrunError):
    """An Optuna trial's pruner stopped it after an epoch: recorded as `pruned`, not failed."""

    exit_code = 0
