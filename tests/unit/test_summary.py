"""Sweep summaries built from real metrics.json files (dlrun/summary.py)."""

import csv
import subprocess
import sys

import pytest

from dlrun.artifacts import RunArtifacts
from dlrun.summary import collect, seed_groups, sort_rows, summarize
from tests.conftest import dlrun_env


def record(run_dir, overrides, val=None, status="completed", metric="accuracy", mode="max", **test):
    """Write a metrics.json shaped like the ones dlrun.run writes."""
    body = {"status": status, "overrides": overrides, "run_dir": str(run_dir)}
    if status == "completed":
        body |= {
            "monitor": {"metric": metric, "mode": mode},
            "best_val": {metric: val},
            "test": {**test, "confusion_matrix": [[1, 0], [0, 1]]},
            "epochs_run": 2,
            "train_seconds": 0.5,
        }
    else:
        body["error"] = "optimizer.lr=-1 is invalid\nsecond line"
    RunArtifacts(run_dir).write_metrics(body)


def test_rows_are_sorted_by_the_monitored_metric_in_its_direction(tmp_path):
    record(tmp_path / "0", ["lr=0.1"], 0.5, accuracy=0.4)
    record(tmp_path / "1", ["lr=0.2"], status="failed")
    record(tmp_path / "2", ["lr=0.3"], 0.9, accuracy=0.8)
    record(tmp_path / "10", ["lr=0.4"], 0.7, accuracy=0.6)
    rows = sort_rows(collect(tmp_path))
    assert [r.job for r in rows] == ["2", "10", "0", "1"]
    assert rows[-1].status == "failed" and rows[-1].error == "optimizer.lr=-1 is invalid"
    assert "confusion_matrix" not in rows[0].test  # only scalar metrics become columns


def test_min_metrics_sort_ascending(tmp_path):
    for i, loss in enumerate([0.3, 0.1, 0.2]):
        record(tmp_path / str(i), [f"lr={i}"], loss, metric="loss", mode="min", r2=1 - loss)
    assert [r.val for r in sort_rows(collect(tmp_path))] == [0.1, 0.2, 0.3]


def test_runs_differing_only_by_seed_are_grouped_with_mean_and_std(tmp_path):
    for i, (opt, seed, val) in enumerate(
        [("sgd", 1, 0.5), ("sgd", 2, 0.7), ("adam", 1, 0.9), ("adam", 2, 0.8), ("adam", 3, 0.7)]
    ):
        record(tmp_path / str(i), [f"optimizer={opt}", f"seed={seed}"], val, accuracy=val)
    record(tmp_path / "5", ["optimizer=rmsprop", "seed=1"], 0.1)  # one seed: no group
    groups = seed_groups(collect(tmp_path))
    assert [g.overrides for g in groups] == [("optimizer=adam",), ("optimizer=sgd",)]
    mean, std = groups[0].val
    assert mean == pytest.approx(0.8) and std == pytest.approx(0.1)  # sample std (n-1)
    assert groups[1].test("accuracy")[0] == pytest.approx(0.6)


def test_summary_files_hold_every_run_and_the_best_overrides(tmp_path):
    record(tmp_path / "0", ["optimizer=sgd", "sweep.resume=true"], 0.5, accuracy=0.4)
    record(tmp_path / "1", ["optimizer=adam"], 0.9, accuracy=0.85)
    record(tmp_path / "2", ["optimizer=adam", "optimizer.lr=-1"], status="failed")
    summary = summarize(tmp_path)
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert [r["job"] for r in rows] == ["1", "0", "2"]
    assert rows[0]["test_accuracy"] == "0.8500" and rows[1]["overrides"] == "optimizer=sgd"
    md = (tmp_path / "summary.md").read_text()
    assert "**Best** (val accuracy 0.9000, max): `optimizer=adam` in `1`" in md
    assert "3 runs: 2 completed, 1 failed" in md and "optimizer.lr=-1 is invalid" in md
    assert [r.job for r in summary.failed] == ["2"]


def test_tables_show_only_the_overrides_that_differ_and_the_shared_ones_once(tmp_path):
    shared = ["hparams_search=optuna", "trainer.epochs=30"]
    record(tmp_path / "0", ["optimizer.lr=0.1", *shared, "model.hidden=[64]"], 0.9, accuracy=0.8)
    record(tmp_path / "1", ["optimizer.lr=0.01", *shared, "model.hidden=[64]"], 0.7, accuracy=0.6)
    record(tmp_path / "2", ["optimizer.lr=0.3", *shared, "model.hidden=[128]"], status="failed")
    md = summarize(tmp_path).markdown
    head, table = md.split("## Runs")
    assert "Every run: `hparams_search=optuna trainer.epochs=30`;" in head
    assert "`optimizer.lr=0.1 model.hidden=[64]` in `0`" in head  # the Best line
    assert "trainer.epochs" not in table and "| `optimizer.lr=0.01 model.hidden=[64]` |" in table
    assert "`optimizer.lr=0.3 model.hidden=[128]`:" in table  # the failed list
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert [r["overrides"] for r in rows] == [
        "optimizer.lr=0.1 model.hidden=[64]",
        "optimizer.lr=0.01 model.hidden=[64]",
        "optimizer.lr=0.3 model.hidden=[128]",
    ]
    assert {r["shared_overrides"] for r in rows} == {"hparams_search=optuna trainer.epochs=30"}


def test_summary_command_rebuilds_without_importing_torch(tmp_path):
    record(tmp_path / "multirun" / "a" / "0", ["optimizer=sgd"], 0.5, accuracy=0.4)
    record(tmp_path / "single", [], 0.7, accuracy=0.6)
    code = (
        "import sys; from dlrun.summary import main; main([sys.argv[1]]); "
        "assert 'torch' not in sys.modules, 'dlrun-summary imported torch'"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        env=dlrun_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "| 1 | `(defaults)` | completed | 0.7000" in proc.stdout
    assert (tmp_path / "summary.md").is_file() and (tmp_path / "summary.csv").is_file()


def test_summary_command_refuses_an_empty_folder(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "dlrun.summary", str(tmp_path)],
        env=dlrun_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and "no run (metrics.json)" in proc.stderr
    assert "Traceback" not in proc.stderr
