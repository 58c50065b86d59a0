"""Point 2 of the trust model: continuing someone else's run or sweep folder never writes through
a symbolic link planted in it. The folder is refused in one line naming the member, and the file
the link points to (the user's own `victim.txt`) is left as it was.

Before the fix each case wrote through its link: Hydra appended the run's log to the victim
(dlrun.log), rewrote it (.hydra/config.yaml), the run lock truncated it to its pid line
(.dlrun.lock), and the sweep marker replaced it (dlrun_sweep.json)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import run_dlrun
from tests.security.conftest import refused

PRECIOUS = "the user's own file\n"


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_text(PRECIOUS)
    return victim


@pytest.mark.parametrize("member", ["dlrun.log", ".hydra/config.yaml", ".dlrun.lock"])
def test_resuming_a_run_folder_with_a_planted_link(run_copy, tmp_path, member):
    victim = _victim(tmp_path)
    planted = run_copy / member
    planted.unlink(missing_ok=True)
    os.symlink(victim, planted)
    proc = run_dlrun(f"resume={run_copy}", "debug=smoke", "trainer.epochs=3", cwd=tmp_path)
    assert victim.read_text() == PRECIOUS
    refused(proc, f"holds a symbolic link {member}")


def test_a_linked_folder_inside_a_run_folder(run_copy, tmp_path):
    """checkpoints/ itself a link to a folder elsewhere: last.pt would be written there."""
    elsewhere = tmp_path / "elsewhere"
    os.rename(run_copy / "checkpoints", elsewhere)
    os.symlink(elsewhere, run_copy / "checkpoints")
    before = sorted(p.name for p in elsewhere.iterdir())
    proc = run_dlrun(f"resume={run_copy}", "debug=smoke", "trainer.epochs=3", cwd=tmp_path)
    refused(proc, "holds a symbolic link checkpoints")
    assert sorted(p.name for p in elsewhere.iterdir()) == before


def test_continuing_a_sweep_folder_with_a_planted_link(tmp_path):
    victim = _victim(tmp_path)
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    os.symlink(victim, sweep / "dlrun_sweep.json")
    proc = run_dlrun("-m", f"hydra.sweep.dir={sweep}", "debug=smoke", "seed=0", cwd=tmp_path)
    assert victim.read_text() == PRECIOUS
    refused(proc, "holds a symbolic link dlrun_sweep.json")


def test_a_hard_link_or_a_pipe_in_a_run_folder(run_copy, tmp_path):
    """dlrun.log hard-linked to the victim: Hydra's log appends would land in it (they did on
    main); a FIFO as metrics.json would hang a reader. Both are refused like a link."""
    victim = _victim(tmp_path)
    (run_copy / "dlrun.log").unlink()
    os.link(victim, run_copy / "dlrun.log")
    proc = run_dlrun(f"resume={run_copy}", "debug=smoke", "trainer.epochs=3", cwd=tmp_path)
    assert victim.read_text() == PRECIOUS
    refused(proc, "a hard link", "dlrun.log")
    (run_copy / "dlrun.log").unlink()
    os.mkfifo(run_copy / "history.csv.part")
    proc = run_dlrun(f"resume={run_copy}", "debug=smoke", "trainer.epochs=3", cwd=tmp_path)
    refused(proc, "a pipe, socket or device", "history.csv.part")
