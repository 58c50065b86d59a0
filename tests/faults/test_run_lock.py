"""One owner per run folder, with real processes: a live run holds its folder; a second dlrun on
it (same hydra.run.dir, resume=FOLDER, resume=auto) is refused naming the live pid; a lock left
by a killed run is stale; a finished folder is never silently overwritten; a loose checkpoint
is resumed into a new folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import (
    read_metrics,
    run_dirs,
    run_dlrun,
    start_dlrun,
    wait_for_file,
)

# Long enough to be still running while the other commands start (~0.3 s an epoch here).
LONG = ("trainer.batch_size=8", "plots=false", "trainer.progress=false")


def _wait_for_checkpoint(root: Path, live: subprocess.Popen, limit_s: float = 180) -> Path:
    return wait_for_file(root, "outputs/*/*/checkpoints/last.pt", live, limit_s).parent.parent


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("dlrun: error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.mark.slow
def test_a_live_run_owns_its_folder(tmp_path):
    # after epoch 1's checkpoint (162 batches of 8), the live run sleeps until killed: it holds
    # its folder without taking a core from the rest of the suite
    hold = ["-m", "tests.proc", "--test-failpoints=hold_after_batch:170"]
    live = start_dlrun([sys.executable, *hold, *LONG, "trainer.epochs=300"], tmp_path)
    try:
        run = _wait_for_checkpoint(tmp_path, live)
        for second in ([f"hydra.run.dir={run}"], [f"resume={run}"], ["resume=auto"]):
            line = _one_error_line(run_dlrun(*LONG, "trainer.epochs=300", *second, cwd=tmp_path))
            assert f"{run} is in use by a running dlrun (pid {live.pid} on " in line, line
        assert live.poll() is None  # untouched by the refused commands
    finally:
        live.kill()  # SIGKILL: no clean-up of any kind, the lock file stays behind
        live.wait()
    assert (run / ".dlrun.lock").is_file()
    # The killed run's lock is stale: resuming it takes the folder over and finishes it.
    done = read_metrics(run)["epochs_run"] + 1
    proc = run_dlrun(*LONG, f"trainer.epochs={done}", f"resume={run}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert read_metrics(run)["status"] == "completed" and not (run / ".dlrun.lock").exists()
    # A new run into the finished folder would overwrite it.
    line = _one_error_line(run_dlrun(f"hydra.run.dir={run}", cwd=tmp_path))
    assert f"hydra.run.dir={run} already holds a run" in line and f"resume={run}" in line
    # A checkpoint outside a run folder (downloaded) continues in a new run folder.
    loose = tmp_path / "downloads" / "model.pt"
    loose.parent.mkdir()
    shutil.copy(run / "checkpoints" / "last.pt", loose)
    proc = run_dlrun(*LONG, f"trainer.epochs={done + 1}", f"resume={loose}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in loose.parent.iterdir()) == ["model.pt"]
    new = [r for r in run_dirs(tmp_path) if r != run]
    assert len(new) == 1 and read_metrics(new[0])["epochs_run"] == done + 1
