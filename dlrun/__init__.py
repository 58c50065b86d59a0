"""dlrun: a Hydra-driven experiment runner for classic PyTorch models.

Importing this package must stay cheap (no torch): `dlrun --help` and shell completion rely on it.
The Python API is loaded on first use: `dlrun.train([...])`, `dlrun.load(run_dir)` (dlrun/api.py).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["train", "load", "TrainResult", "__version__"]

_API = {"train", "load", "TrainResult"}


def __getattr__(name: str) -> Any:
    """dlrun.train / dlrun.load / dlrun.TrainResult, imported when first asked for."""
    if name in _API:
        from dlrun import api

        return getattr(api, name)
    if name == "errors":  # dlrun.errors.DlrunError without a separate import
        import importlib

        return importlib.import_module("dlrun.errors")
    raise AttributeError(f"module 'dlrun' has no attribute {name!r}")
