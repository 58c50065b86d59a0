"""A sweep under Hydra's basic launcher, through the console script: it writes its summary and the
process exits (joblib and submitit-local: tests/smoke/test_launchers.py, also as processes)."""

from __future__ import annotations

import subprocess

from tests.conftest import dlrun_env, read_metrics, run_dirs


def test_a_basic_sweep_exits_after_its_summary(tmp_path):
    proc = subprocess.run(
        ["dlrun", "-m", "optimizer.lr=0.01,0.001", "debug=smoke", "plots=false"],
        cwd=tmp_path,
        env=dlrun_env(),
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stderr
    assert "summary.md" in proc.stdout
    assert [read_metrics(r)["status"] for r in run_dirs(tmp_path)] == ["completed"] * 2
