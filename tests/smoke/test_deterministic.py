"""trainer.deterministic=true: a fixed thread count (never tuned) and torch's deterministic
algorithms, so one command and seed give bit-identical weights whether or not another process
runs beside it (the thread tuner reacts to such a process, and another thread count sums in
another order)."""

from __future__ import annotations

import subprocess
import sys
import time

import torch

from dlrun import thread_tuner, threads
from tests.conftest import read_metrics, run_dirs
from tests.faults.test_reliability import assert_same_weights, model_state

ARGS = ["trainer.deterministic=true", "trainer.epochs=2", "model.dropout=0.2", "seed=5"]


def test_a_deterministic_plan_is_never_tuned():
    plan = threads.plan("auto", environ={}, deterministic=True)
    assert not plan.tune and "trainer.deterministic" in plan.why
    assert thread_tuner.tuner_for(plan, "cpu") is None


def test_same_weights_alone_and_beside_a_busy_process(dlrun, tmp_path):
    # OMP_NUM_THREADS emptied: dlrun plans the threads itself (all usable CPUs), as a user's
    # shell would leave it
    try:
        dlrun(*ARGS, OMP_NUM_THREADS="")
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.2)
            dlrun(*ARGS, OMP_NUM_THREADS="")
        finally:
            busy.kill()
            busy.wait()
    finally:
        torch.set_num_threads(1)  # this test process's own setting (tests/conftest.py)
    alone, beside = run_dirs(tmp_path)
    assert_same_weights(model_state(alone), model_state(beside))
    for run in (alone, beside):
        record = read_metrics(run)["threads"]
        assert record["tune"] is False and "tuning" not in record
    assert torch.are_deterministic_algorithms_enabled() is False  # put back after the runs
