"""Process-level state of a run: seeding, device choice, determinism, and the signal -> stop
flag."""

from __future__ import annotations

import contextlib
import os
import random
import signal
from types import FrameType

import numpy as np
import torch

from dlrun.errors import ConfigError


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an unavailable explicit choice is refused."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"device={name} was requested but CUDA is not available on this machine: "
            "use device=auto or device=cpu"
        )
    if name == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ConfigError(
            "device=mps was requested but MPS is not available: use device=auto or device=cpu"
        )
    return torch.device(name)


def configure_backends(device: torch.device, deterministic: bool) -> None:
    """Deterministic kernels when asked; otherwise let cuDNN pick the fastest algorithms."""
    if deterministic:
        # cuBLAS is deterministic only with a fixed workspace (read when CUDA starts its handle)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


# Exit codes follow the shell convention 128 + signal number.
_EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class StopFlag:
    """Set by SIGINT/SIGTERM; the loop checks it at step boundaries and stops cleanly.

    A second signal of the same kind restores the default behaviour
    (so a double Ctrl-C still kills).
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}
        # Signals a peer rank stopped this one for, whose own copy has not arrived yet.
        self._awaited: set[int] = set()
        self._exited = False

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES.get(self.signum, 1) if self.signum else 0

    def adopt(self, signum: int) -> None:
        """Stop for `signum`, which another rank received (0: none). torchrun sends every rank its
        own copy, which can arrive after this rank has already stopped for the peer's: that copy
        is this same stop, not a second signal (which would kill the rank before its exit line)."""
        if signum and self.signum is None:
            self.signum = signum
            self._awaited.add(signum)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum in self._awaited:  # this rank's copy of the signal it already stopped for
            self._awaited.discard(signum)
            if self._exited:
                signal.signal(signum, self._previous[signum])  # type: ignore[arg-type]
            return
        if self.signum is not None:
            signal.signal(signum, signal.SIG_DFL)
        self.signum = signum

    def __enter__(self) -> StopFlag:
        for sig in _EXIT_CODES:
            # Outside the main thread (a thread-based launcher) no handler can be set: skip it.
            with contextlib.suppress(ValueError):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        self._exited = True
        for sig, previous in self._previous.items():
            if sig not in self._awaited:  # else this handler stays to take that copy
                signal.signal(sig, previous)  # type: ignore[arg-type]


# CPU instructions that run each low precision natively; without them torch emulates it.
_NATIVE_CPU_FLAGS = {"bf16": ("avx512_bf16", "amx_bf16"), "fp16": ("avx512_fp16", "amx_fp16")}


def _cpu_flags() -> set[str] | None:
    """The CPU's feature flags (Linux), or None where they cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            line = next((row for row in f if row.startswith("flags")), None)
    except OSError:
        return None
    return set(line.split(":", 1)[1].split()) if line else None


def slow_precision_warning(device: torch.device, precision: str) -> str | None:
    """One line when mixed precision would run emulated (slower) on this CPU."""
    flags = _cpu_flags() if device.type == "cpu" and precision in _NATIVE_CPU_FLAGS else None
    if flags is None or flags & set(_NATIVE_CPU_FLAGS[precision]):
        return None
    return (
        f"trainer.precision={precision} on a CPU without "
        f"{' or '.join(_NATIVE_CPU_FLAGS[precision])}"
        f" is emulated and several times slower than 32 (benchmarks/cpu_precision.py: a CNN "
        f"5.9x in bf16, 7.5x in fp16 on such a CPU)"
        f"; use trainer.precision=32 on this machine"
    )
