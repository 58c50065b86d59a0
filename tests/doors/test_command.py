"""The `dlrun` console script and `python -m dlrun`; importing the engine changes no global
state (a fresh interpreter is the point)."""

from __future__ import annotations

import subprocess
import sys

from dlrun import __version__
from tests.conftest import dlrun_env, read_metrics, run_dirs


def _run(command: list[str], cwd, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=cwd, env=dlrun_env(), capture_output=True, text=True, timeout=timeout
    )


def test_version_is_dlruns_own_through_both_entry_points(tmp_path):
    for command in (["dlrun", "--version"], [sys.executable, "-m", "dlrun", "--version"]):
        proc = _run(command, tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == f"dlrun {__version__}", command


def test_the_console_script_sweeps_exits_and_refuses_bad_input_in_one_line(tmp_path):
    # a sweep under Hydra's basic launcher: it writes its summary and the process exits (joblib
    # and submitit-local: tests/smoke/test_launchers.py, also as processes)
    proc = _run(["dlrun", "-m", "optimizer.lr=0.01,0.001", "debug=smoke", "plots=false"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "summary.md" in proc.stdout
    assert [read_metrics(r)["status"] for r in run_dirs(tmp_path)] == ["completed"] * 2
    refused = _run(["dlrun", "debug=smoke", "trainer.epochs=0"], tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip().startswith("dlrun: error: trainer.epochs")
    assert len(refused.stderr.strip().splitlines()) == 1


IMPORT_CHANGES_NOTHING = """
import sys
import hydra._internal.hydra as internal
from omegaconf.basecontainer import BaseContainer

def state():
    return internal.Callbacks, internal.Hydra.get_mode, dict(BaseContainer._resolvers)

before = state()
import dlrun.run, dlrun.loop
assert state() == before, set(state()[2]) - set(before[2])
doors = {"dlrun.cli", "dlrun.api", "dlrun.help", "dlrun.__main__"}
assert not doors & set(sys.modules), doors & set(sys.modules)  # the engine imports no door
import dlrun.engine, dlrun.startup, dlrun.cli, dlrun.api, dlrun.sweep, dlrun.callbacks
assert state() == before, set(state()[2]) - set(before[2])
print("unchanged")
"""


def test_importing_the_engine_leaves_hydra_and_omegaconf_as_they_were(tmp_path):
    proc = _run([sys.executable, "-c", IMPORT_CHANGES_NOTHING], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "unchanged"
