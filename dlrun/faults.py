"""Failpoints: test-only fault injection at named places in the real code path.

`arm("name:N[,name:N...]")` makes `failpoint(name)` return True on its N-th call in this process
(1-based), so a test can crash a checkpoint write half-way, fill the disk, run out of memory or
poison a batch while everything else runs for real. Only Python code can arm them (the tests'
in-process runner, or `python -m tests.proc`): no environment variable or config key reaches
them, so nothing a user or a file sets can switch them on. Unarmed: one falsy check per call.
"""

from __future__ import annotations

_targets: dict[str, int] = {}
_hits: dict[str, int] = {}


def arm(spec: str | None) -> None:
    """Arm the failpoints in `spec` ("name:N,..."), or disarm all with None; counts restart."""
    _targets.clear()
    _hits.clear()
    for item in (spec or "").split(","):
        if ":" in item:
            name, count = item.split(":", 1)
            _targets[name.strip()] = int(count)


def failpoint(name: str) -> bool:
    if not _targets or name not in _targets:
        return False
    _hits[name] = _hits.get(name, 0) + 1
    return _hits[name] == _targets[name]
