"""CPU thread policy (dlrun/threads.py): the wait policy set before torch loads, threads per run."""

from __future__ import annotations

import pytest

from dlrun import threads
from tests.conftest import read_metrics, run_dirs


def test_idle_threads_sleep_unless_the_environment_chose():
    env: dict[str, str] = {}
    threads.prepare_openmp(env)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}
    for chosen in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "300000"}):
        env = dict(chosen)
        threads.prepare_openmp(env)
        assert env == chosen


@pytest.mark.parametrize(
    "setting,env,workers,expected",
    [
        (3, {"OMP_NUM_THREADS": "1"}, 0, (3, "trainer.threads")),  # typed wins over everything
        ("auto", {"OMP_NUM_THREADS": "1"}, 0, (1, "OMP_NUM_THREADS")),
        ("auto", {"OMP_NUM_THREADS": ""}, 0, (None, "usable CPUs")),  # empty: ignored
        ("auto", {"LOCAL_WORLD_SIZE": "2"}, 0, ("cpus/2", "local ranks")),
        ("auto", {}, 1, ("cpus-1", "data workers")),
    ],
)
def test_thread_plan(monkeypatch, setting, env, workers, expected):
    monkeypatch.setattr(threads, "usable_cpus", lambda: 8)
    plan = threads.plan(setting, env, loader_workers=workers)
    want = {None: 8, "cpus/2": 4, "cpus-1": 7}.get(expected[0], expected[0])
    assert plan.torch == want and expected[1] in plan.why


def test_a_run_records_its_threads(dlrun, tmp_path):
    dlrun("debug=smoke", "trainer.threads=1")
    record = read_metrics(run_dirs(tmp_path)[0])["threads"]
    assert record["torch"] == 1 and record["why"] == "trainer.threads"
    assert dlrun("trainer.threads=0", expect_fail=True).returncode == 2
