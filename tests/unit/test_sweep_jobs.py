"""What a multirun job does with its folder (the resume plan), and GPU pinning for parallel
launchers."""

from pathlib import Path

import pytest

from dlrun.artifacts import RunArtifacts
from dlrun.resume import plan
from dlrun.sweep import (
    GpuPinner,
    find_previous_sweep,
    gpu_for_job,
    objective,
    visible_gpus,
)


def job_folder(tmp_path: Path, status: str, checkpoint: bool) -> RunArtifacts:
    art = RunArtifacts(tmp_path / "3")
    art.write_metrics(
        {
            "status": status,
            "overrides": ["optimizer.lr=0.1"],
            "monitor": {"metric": "loss", "mode": "min"},
            "best_val": {"loss": 0.25},
        }
    )
    if checkpoint:
        art.checkpoint("last").parent.mkdir(parents=True)
        art.checkpoint("last").write_bytes(b"not read here")
    return art


def job_plan(art: RunArtifacts, spec: str | None = None):
    return plan(spec, art.run_dir, job_record=art.read_metrics())


@pytest.mark.parametrize("status", ["running", "interrupted"])
def test_an_unfinished_job_resumes_from_its_own_folder(tmp_path, status):
    art = job_folder(tmp_path, status, checkpoint=True)
    decided = job_plan(art)
    assert decided.action == "continue" and decided.checkpoint == art.checkpoint("last")
    assert decided.in_run_folder and "unfinished" in decided.why


@pytest.mark.parametrize("status,checkpoint", [("failed", True), ("running", False)])
def test_a_failed_or_checkpointless_job_starts_again(tmp_path, status, checkpoint):
    assert job_plan(job_folder(tmp_path, status, checkpoint)).action == "fresh"


def test_resume_auto_continues_a_folder_with_a_checkpoint_and_starts_a_new_one_afresh(tmp_path):
    assert plan("auto", tmp_path / "new").action == "fresh"
    art = job_folder(tmp_path, "failed", checkpoint=True)  # auto continues any last.pt there
    decided = plan("auto", art.run_dir)
    assert decided.action == "continue" and decided.checkpoint == art.checkpoint("last")
    assert plan(None, art.run_dir).action == "fresh"


def test_a_completed_job_is_skipped_with_its_stored_value(tmp_path):
    decided = job_plan(job_folder(tmp_path, "completed", True))
    assert decided.action == "skip" and "skipped" in decided.why
    # min-metrics are negated: a sweeper maximises what jobs return
    assert objective(decided.record) == -0.25
    assert (
        objective(
            {
                "status": "completed",
                "monitor": {"metric": "accuracy", "mode": "max"},
                "best_val": {"accuracy": 0.9},
            }
        )
        == 0.9
    )
    assert objective({"status": "failed"}) is None


def test_previous_sweep_is_the_newest_with_the_same_overrides(tmp_path):
    import json
    import os

    for i, (name, overrides) in enumerate(
        [
            ("d1/a", ["lr=1,2", "seed=0"]),
            ("d1/b", ["seed=0", "lr=1,2"]),
            ("d2/c", ["lr=1,2"]),
            ("d2/d", ["lr=1,2", "seed=0", "sweep.resume=true"]),
        ]
    ):
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "dlrun_sweep.json").write_text(json.dumps({"overrides": overrides}))
        os.utime(tmp_path / name / "dlrun_sweep.json", (1000 + i, 1000 + i))
    assert (
        find_previous_sweep(tmp_path, ["seed=0", "lr=1,2", "sweep.resume=true"])
        == tmp_path / "d2/d"
    )
    assert find_previous_sweep(tmp_path, ["lr=1,2"]) == tmp_path / "d2/c"
    assert find_previous_sweep(tmp_path, ["lr=3"]) is None


def test_jobs_are_pinned_round_robin_over_the_visible_gpus():
    assert [gpu_for_job(n, ["0", "1"]) for n in range(5)] == ["0", "1", "0", "1", "0"]
    assert [gpu_for_job(n, ["3", "5", "7"]) for n in range(4)] == ["3", "5", "7", "3"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2, 4"}) == ["2", "4"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []


def test_a_worker_process_keeps_the_gpu_of_its_first_job():
    env = {"CUDA_VISIBLE_DEVICES": "0,1"}
    pinner = GpuPinner()
    assert pinner.pin(3, env, visible_gpus(env)) == "1" and env["CUDA_VISIBLE_DEVICES"] == "1"
    # CUDA reads the variable once per process: a later job in this worker stays on GPU 1
    assert pinner.pin(4, env, visible_gpus({"CUDA_VISIBLE_DEVICES": "0,1"})) == "1"


def test_one_gpu_or_none_is_left_alone():
    env = {"CUDA_VISIBLE_DEVICES": "5"}
    assert GpuPinner().pin(2, env, ["5"]) is None and env == {"CUDA_VISIBLE_DEVICES": "5"}
    assert GpuPinner().pin(0, {}, []) is None
