"""Failpoints: test-only fault injection at named places in the real code path.

`DLRUN_FAILPOINTS="name:N[,name:N...]"` makes `failpoint(name)` return True on its N-th call in
this process (1-based), so a test can crash a checkpoint write half-way, fill the disk, run out of
memory or poison a batch while everything else runs for real. Unset in normal use: one dict lookup.
"""

from __future__ import annotations

import os

_hits: dict[str, int] = {}
_SPEC = os.environ.get("DLRUN_FAILPOINTS")  # read once: failpoints sit on the per-step path


def failpoint(name: str) -> bool:
    spec = _SPEC
    if not spec:
        return False
    targets = dict(item.split(":", 1) for item in spec.split(",") if ":" in item)
    if name not in targets:
        return False
    _hits[name] = _hits.get(name, 0) + 1
    return _hits[name] == int(targets[name])
