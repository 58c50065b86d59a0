"""Multiruns through the real `dlrun -m` command: summaries, failures, fail_fast, resume."""

import csv
import json
import signal
import sys
from pathlib import Path

import pytest

from tests.conftest import read_metrics, run_dirs, start_dlrun, wait_for_file

SMOKE = ["debug=smoke", "plots=false"]  # plots: tests/smoke/test_observe.py
JOB_SMOKE = ["debug=smoke", "plots=False"]  # as Hydra's sweeper writes them in a job


def sweep_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in (root / "outputs" / "multirun").glob("*/*/dlrun_sweep.json"))


def test_sweep_writes_and_prints_a_summary_with_seed_groups(dlrun, tmp_path):
    proc = dlrun("-m", "seed=1,2,3", "optimizer.lr=0.05", *SMOKE)
    (sweep,) = sweep_dirs(tmp_path)
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert len(rows) == 3 and {r["status"] for r in rows} == {"completed"}
    vals = [float(r["val"]) for r in rows]
    assert vals == sorted(vals, reverse=True) and rows[0]["monitor"] == "accuracy"
    assert {"test_accuracy", "test_loss", "epochs", "seconds", "run_dir"} <= set(rows[0])
    best = max(run_dirs(tmp_path), key=lambda r: read_metrics(r)["best_val"]["accuracy"])
    assert rows[0]["run_dir"] == str(best)
    md = (sweep / "summary.md").read_text()
    # the overrides every job shares, once (Hydra's sweeper writes a bool override as `False`);
    # the mean ± std row: the seeds differ, nothing else does
    assert "Every run: `optimizer.lr=0.05 debug=smoke plots=False`;" in md
    assert "| `(the shared ones only)` | 1,2,3 | accuracy " in md
    assert "## Runs (best first)" in proc.stdout and "summary.md" in proc.stdout


def test_failed_jobs_are_recorded_and_the_sweep_goes_on(dlrun, tmp_path):
    proc = dlrun("-m", "loss=mse,auto", "optimizer.lr=0.05", *SMOKE, expect_fail=True)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith("dlrun: error: 1 of 2 jobs did not complete") and "summary.md" in line
    (sweep,) = sweep_dirs(tmp_path)
    records = {m["overrides"][0]: m for m in map(read_metrics, run_dirs(tmp_path))}
    assert records["loss=auto"]["overrides"] == ["loss=auto", "optimizer.lr=0.05", *JOB_SMOKE]
    assert records["loss=auto"]["status"] == "completed"
    bad = records["loss=mse"]
    assert bad["status"] == "failed" and "loss MSELoss cannot train" in bad["error"]
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["completed", "failed"]
    assert "loss MSELoss cannot train" in (sweep / "summary.md").read_text()


def test_fail_fast_stops_at_the_first_failure(dlrun, tmp_path):
    proc = dlrun(
        "-m", "optimizer.lr=0.05,-1,0.02", *SMOKE, "sweep.fail_fast=true", expect_fail=True
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "job 1 failed and sweep.fail_fast=true stopped the sweep" in proc.stderr
    (sweep,) = sweep_dirs(tmp_path)
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]  # job 2 never ran
    assert read_metrics(sweep / "1")["error"].startswith("optimizer.lr=-1 is invalid")  # no Job yet
    assert len(list(csv.DictReader((sweep / "summary.csv").open()))) == 2


@pytest.mark.slow
def test_resume_skips_completed_jobs_and_reruns_the_rest(dlrun, tmp_path):
    args = ["-m", "optimizer.lr=0.05,0.02", *SMOKE]
    dlrun(*args)
    (sweep,) = sweep_dirs(tmp_path)
    done = (sweep / "0" / "metrics.json").read_text()
    failed = {**read_metrics(sweep / "1"), "status": "failed", "error": "out of memory"}
    (sweep / "1" / "metrics.json").write_text(json.dumps(failed))  # as if job 1 had failed

    proc = dlrun(*args, "sweep.resume=true")
    assert sweep_dirs(tmp_path) == [sweep]  # the earlier sweep folder, not a new one
    assert f"resuming folder: {sweep.relative_to(tmp_path)}" in proc.stdout
    assert proc.stdout.count("already completed") == 1
    assert (sweep / "0" / "metrics.json").read_text() == done  # skipped, untouched
    assert read_metrics(sweep / "1")["status"] == "completed"  # failed last time: run again
    assert len(list(csv.DictReader((sweep / "summary.csv").open()))) == 2

    dlrun("-m", "optimizer.lr=0.05,0.03", *SMOKE, "sweep.resume=true")  # another command
    assert len(sweep_dirs(tmp_path)) == 2
    proc = dlrun(*args, f"hydra.sweep.dir={sweep}")  # the same folder, named explicitly
    assert proc.stdout.count("already completed") == 2


@pytest.mark.slow
def test_sigterm_stops_the_sweep_after_a_checkpoint(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "dlrun",
        "-m",
        "seed=1,2",
        "trainer.epochs=5000",
        "trainer.progress=false",
    ]
    sweep = start_dlrun(cmd, tmp_path)
    try:
        wait_for_file(tmp_path, "outputs/multirun/*/*/0/checkpoints/last.pt", sweep)
        sweep.send_signal(signal.SIGTERM)
        _, err = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 143
    (line,) = err.strip().splitlines()
    assert "SIGTERM received: job 0 saved a checkpoint and the sweep stopped" in line
    assert "sweep.resume=true" in line and "summary.md" in line
    (run,) = run_dirs(tmp_path)  # job 1 never started
    assert read_metrics(run)["status"] == "interrupted"
    (sweep_dir,) = sweep_dirs(tmp_path)
    assert "interrupted" in (sweep_dir / "summary.md").read_text()


@pytest.mark.slow
def test_resumed_sweep_continues_a_killed_job_from_its_checkpoint_bit_exactly(tmp_path):
    import torch

    from tests.conftest import run_dlrun

    args = [
        "-m",
        "seed=1,2",
        "trainer.epochs=2",
        "trainer.checkpoint_every_steps=5",
        "trainer.progress=false",
    ]
    # 21 batches an epoch: job 0 runs 42, so batch 50 is job 1's 8th, after its checkpoint at 5.
    killed = run_dlrun(*args, cwd=tmp_path, failpoints="kill_after_batch:50", process=True)
    assert killed.returncode == -signal.SIGKILL
    (sweep,) = sweep_dirs(tmp_path)
    assert read_metrics(sweep / "0")["status"] == "completed"
    assert read_metrics(sweep / "1")["status"] == "running"
    done = (sweep / "0" / "metrics.json").read_text()

    proc = run_dlrun(*args, "sweep.resume=true", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("already completed") == 1 and "resuming from" in proc.stdout
    assert (sweep / "0" / "metrics.json").read_text() == done
    assert read_metrics(sweep / "1")["status"] == "completed"

    reference = tmp_path / "reference"
    reference.mkdir()
    single = run_dlrun(
        "seed=2",
        "trainer.epochs=2",
        "trainer.checkpoint_every_steps=5",
        "trainer.progress=false",
        cwd=reference,
    )
    assert single.returncode == 0
    want = torch.load(run_dirs(reference)[0] / "checkpoints" / "last.pt", weights_only=True)[
        "model"
    ]
    got = torch.load(sweep / "1" / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(got[k], want[k]) for k in want)
