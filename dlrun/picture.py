"""What a task shows: pictures it returns, which the run writes (artifacts.py) and hands to the
loggers that show images. A task never writes files itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # no torch import here: the summary tool and --help import artifacts.py
    from torch import Tensor


@dataclass(frozen=True)
class Picture:
    """(N, C, H, W) images with values in [0, 1], C = 1 or 3, shown as one grid `per_row` wide."""

    images: Tensor
    per_row: int = 8
