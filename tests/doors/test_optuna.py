"""An Optuna search through the console script: the study runs its trials in the sweep's process,
writes its summary and the process exits (the search itself: tests/smoke/test_optuna.py)."""

from __future__ import annotations

from tests.conftest import read_metrics, run_command, run_dirs


def test_an_optuna_search_runs_its_trials_and_exits(tmp_path):
    command = ["dlrun", "-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2", "debug=smoke"]
    proc = run_command(
        [*command, "plots=false"],
        cwd=tmp_path,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert "summary.md" in proc.stdout
    assert [read_metrics(r)["status"] for r in run_dirs(tmp_path)] == ["completed"] * 2
    assert len(list((tmp_path / "outputs").rglob("optuna.db"))) == 1
