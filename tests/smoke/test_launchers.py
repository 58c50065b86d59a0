"""Parallel and cluster launchers through the real command (joblib here; SLURM is config only).
The joblib and submitit sweeps run as real processes with a time limit: that the command exits
after its summary is part of the point (a joblib sweep once hung there, on loky's manager
thread)."""

import re
import subprocess
import sys

import pytest

from tests.conftest import read_metrics, run_dirs, start_dlrun, wait_for_file
from tests.smoke.test_sweeps import sweep_dirs

JOBLIB = ["-m", "debug=smoke", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]


@pytest.mark.slow
def test_joblib_runs_jobs_in_worker_processes_and_records_failures(dlrun, tmp_path):
    proc = dlrun(*JOBLIB, "optimizer.lr=0.05,-1,0.02", expect_fail=True, process=True, timeout=180)
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout
    assert proc.returncode == 1 and "1 of 3 jobs did not complete" in proc.stderr
    (sweep,) = sweep_dirs(tmp_path)  # one sweep folder although the jobs ran in other processes
    records = [read_metrics(r) for r in run_dirs(tmp_path)]
    statuses = {o: m["status"] for m in records for o in m["overrides"] if "lr=" in o}
    assert statuses == {
        "optimizer.lr=0.05": "completed",
        "optimizer.lr=-1": "failed",
        "optimizer.lr=0.02": "completed",
    }
    assert (sweep / "summary.md").is_file()


def test_cluster_launcher_configs_compose_with_their_defaults(compose):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from dlrun.cli import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        slurm = hydra_compose("config", ["hydra/launcher=slurm"], return_hydra_config=True)
        local = hydra_compose("config", ["hydra/launcher=local"], return_hydra_config=True)
    assert slurm.hydra.launcher._target_.endswith("SlurmLauncher")
    assert slurm.hydra.launcher.timeout_min > 0 and slurm.hydra.launcher.gpus_per_task == 1
    assert local.hydra.launcher._target_.endswith("LocalLauncher")


@pytest.mark.slow
def test_submitit_local_runs_each_job_in_its_own_process(dlrun, tmp_path):
    proc = dlrun(
        "-m",
        "hydra/launcher=local",
        "optimizer.lr=0.05,-1",
        "debug=smoke",
        expect_fail=True,
        process=True,
        timeout=180,
    )
    assert proc.returncode == 1 and "1 of 2 jobs did not complete" in proc.stderr
    (sweep,) = sweep_dirs(tmp_path)
    assert len(list((sweep / ".submitit").glob("[0-9]*"))) == 2  # one process (job id = pid) each
    assert sorted(read_metrics(r)["status"] for r in run_dirs(tmp_path)) == ["completed", "failed"]


@pytest.mark.slow
def test_sigterm_to_a_submitit_job_reaches_the_checkpoint_and_exit_path(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "dlrun",
        "-m",
        "hydra/launcher=local",
        "trainer.epochs=5000",
        "trainer.progress=false",
    ]
    sweep = start_dlrun(cmd, tmp_path)
    try:
        wait_for_file(tmp_path, "outputs/multirun/*/*/0/checkpoints/last.pt", sweep)
        (job,) = tmp_path.glob("outputs/multirun/*/*/.submitit/[0-9]*")  # local job id = its pid
        subprocess.run(["kill", "-TERM", job.name], check=True)
        _, err = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 1 and "1 of 1 jobs did not complete (interrupted)" in err
    # submitit got the job's end from the job itself: no 15 s wait for a result, no traceback
    assert "SIGTERM received: job 0 saved a checkpoint and the sweep stopped" in err
    assert "Traceback" not in err and "has not produced any output" not in err
    (run,) = run_dirs(tmp_path)
    m = read_metrics(run)
    assert m["status"] == "interrupted" and "SIGTERM" in m["error"] and m["epochs_run"] < 5000
    assert (run / "checkpoints" / "last.pt").is_file()


@pytest.mark.gpu
def test_parallel_jobs_are_pinned_one_per_gpu(dlrun, tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two or more GPUs")
    dlrun(*JOBLIB, "seed=1,2")
    by_process: dict[str, str] = {}
    for run in run_dirs(tmp_path):
        found = re.search(
            r"pinned to GPU (\S+) \(CUDA_VISIBLE_DEVICES, process (\d+)\)",
            (run / "dlrun.log").read_text(),
        )
        assert found, f"{run} was not pinned"
        assert read_metrics(run)["device"].startswith("cuda")
        by_process[found.group(2)] = found.group(1)
    # every worker process holds its own GPU (a worker that ran both jobs kept one)
    assert len(set(by_process.values())) == len(by_process)
