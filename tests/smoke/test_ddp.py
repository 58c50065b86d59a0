"""`torchrun --nproc_per_node=2 -m dlrun` on CPU (gloo) against one process with the same global
batch size: same metrics within 1e-5 (float summation order), and one run folder, not two."""

import contextlib
import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import dlrun_env, read_metrics, run_dirs, run_dlrun, start_dlrun, wait_for_file

# dropout off: each rank draws its own dropout masks, so only a deterministic model can match
# 720 training rows / global batch 48 = 15 full batches of 2 x 24 per step
ARGS = [
    "data=classification",
    "model=mlp",
    "model.dropout=0",
    "optimizer=sgd",
    "optimizer.lr=0.1",
    "trainer.batch_size=48",
    "trainer.epochs=3",
    "device=cpu",
    "trainer.progress=false",
    "plots=false",
]
TOL = 1e-5


def history(run):
    return list(csv.DictReader((run / "history.csv").open()))


# `torchrun --standalone --nproc_per_node=2 -m dlrun`: two gloo ranks on this CPU
TORCHRUN = [
    *[sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"],
    *["-m", "dlrun"],
]


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process_and_write_one_run_folder(dlrun, tmp_path):
    ddp_root, single_root = tmp_path / "ddp", tmp_path / "single"
    ddp_root.mkdir()
    cmd = [*TORCHRUN, *ARGS]
    proc = subprocess.run(
        cmd, cwd=ddp_root, env=dlrun_env(), capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "torchrun: 2 ranks (cpu), global batch 48 = 2 x 24" in proc.stdout
    assert proc.stdout.count("epoch 3/3") == 1  # rank 1 logs nothing
    folders = [p for p in (ddp_root / "outputs").glob("*/*") if p.is_dir()]
    assert len(folders) == 1 and run_dirs(ddp_root) == folders  # one run folder, not one per rank
    (ddp,) = folders
    assert {p.name for p in (ddp / "checkpoints").iterdir()} == {"best.pt", "last.pt"}

    single_root.mkdir()
    single_run = run_dlrun(*ARGS, cwd=single_root)  # one process: this one (same 1 thread)
    assert single_run.returncode == 0, single_run.stderr
    (single,) = run_dirs(single_root)
    a, b = read_metrics(ddp), read_metrics(single)
    assert a["status"] == b["status"] == "completed" and a["epochs_run"] == 3
    for name, value in b["test"].items():
        if isinstance(value, float):
            assert a["test"][name] == pytest.approx(value, abs=TOL), name
    for row_a, row_b in zip(history(ddp), history(single), strict=True):
        for key in row_b:
            if key.startswith(("train_", "val_")):
                assert float(row_a[key]) == pytest.approx(float(row_b[key]), abs=TOL), key


def rank_pid(torchrun: subprocess.Popen, rank: int) -> int:
    """The process id of one of torchrun's ranks (Linux: /proc)."""
    children = Path(f"/proc/{torchrun.pid}/task/{torchrun.pid}/children").read_text().split()
    for pid in map(int, children):
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if f"RANK={rank}".encode() in environ:
            return pid
    raise AssertionError(f"torchrun has no rank {rank} among {children}")


def kill_all(torchrun: subprocess.Popen, ranks: list[int]) -> None:
    """SIGKILL the ranks and torchrun if torchrun still runs (a rank left behind would train on
    for the rest of the suite)."""
    if torchrun.poll() is None:
        for pid in ranks:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        torchrun.kill()


@pytest.mark.slow
def test_sigterm_to_one_rank_stops_every_rank_at_the_same_step(tmp_path):
    """`kill -TERM` to torchrun reaches every rank at nearly the same moment; one rank can still
    reach the next step boundary (whose all-reduce stops both) before its own copy arrives. The
    test makes that case certain: the signal goes to rank 1 alone, rank 0 (which saves) stops for
    it. The rank's own late copy is tests/unit/test_distributed.py's."""
    cmd = [*TORCHRUN, *ARGS, "trainer.epochs=5000"]
    run = start_dlrun(cmd, tmp_path)
    ranks: list[int] = []
    try:
        wait_for_file(tmp_path, "outputs/*/*/checkpoints/last.pt", run)
        ranks = [rank_pid(run, 0), rank_pid(run, 1)]
        os.kill(ranks[1], signal.SIGTERM)
        try:
            _, err = run.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            kill_all(run, ranks)
            pytest.fail(f"torchrun did not end 120 s after the signal:\n{run.communicate()[1]}")
    finally:
        kill_all(run, ranks)
    # both ranks leave through the checkpoint-and-exit path (no rank left waiting in a collective)
    # and name the signal (a rank stopped by a peer's once printed " received:", exit 0)
    line = "dlrun: SIGTERM received: stopped at a step boundary and saved last.pt"
    assert err.count(line) == 2, err
    assert "exitcode  : 143" in err, err  # as torchrun reports the ranks' exits
    (folder,) = run_dirs(tmp_path)
    m = read_metrics(folder)
    assert m["status"] == "interrupted" and 1 <= m["epochs_run"] < 5000
