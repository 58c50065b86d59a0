"""CPU thread policy (dlrun/threads.py): threads per run, and the tuner that picks one thread or
more from measured step times while a CPU run trains."""

from __future__ import annotations

import pytest

from dlrun import threads
from tests.conftest import read_metrics, run_dirs


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
    assert plan.tune == (expected[1] in ("usable CPUs", "data workers"))  # only a count dlrun chose


def test_a_run_records_its_threads(dlrun, tmp_path):
    dlrun("debug=smoke", "trainer.threads=1")
    record = read_metrics(run_dirs(tmp_path)[0])["threads"]
    assert record["torch"] == 1 and record["why"] == "trainer.threads"
    assert dlrun("trainer.threads=0", expect_fail=True).returncode == 2


class SimulatedSteps:
    """A clock that advances by each step's cost, which depends on the thread count in force:
    the tuner's decisions on known step times (real timings would make the test flaky)."""

    def __init__(self, cost) -> None:  # cost(threads, step) -> seconds
        self.cost, self.now, self.threads, self.step = cost, 0.0, 0, 0
        self.steps_at: dict[int, int] = {}

    def set_threads(self, n: int) -> None:
        self.threads = n

    def train(self, tuner: threads.ThreadTuner, steps: int) -> None:
        for _ in range(steps):
            self.now += self.cost(self.threads, self.step)
            self.steps_at[self.threads] = self.steps_at.get(self.threads, 0) + 1
            self.step += 1
            tuner.after_step()


def _tuner(sim: SimulatedSteps) -> threads.ThreadTuner:
    return threads.ThreadTuner(2, clock=lambda: sim.now, set_threads=sim.set_threads)


def test_tuner_keeps_more_threads_when_they_step_faster():
    sim = SimulatedSteps(lambda n, step: {1: 0.010, 2: 0.008}[n])
    tuner = _tuner(sim)
    assert sim.threads == 1  # starts safe
    sim.train(tuner, 300)
    assert tuner.current == sim.threads == 2
    assert tuner.record() == {"threads": 2, "step_ms": {"1": 10.0, "2": 8.0}, "switches": 1}
    assert sim.steps_at[1] < 20  # the first window, and the short retries of one thread


def test_tuner_stays_on_one_thread_when_more_do_not_pay():
    sim = SimulatedSteps(lambda n, step: 0.010)
    tuner = _tuner(sim)
    sim.train(tuner, 300)
    assert tuner.current == sim.threads == 1 and tuner.switches == 0


def test_tuner_falls_back_to_one_thread_when_another_run_starts_spinning():
    # alone two threads win; from step 200 a second run's spinning threads make them 10x slower
    sim = SimulatedSteps(lambda n, step: 0.010 if n == 1 else (0.008 if step < 200 else 0.100))
    tuner = _tuner(sim)
    sim.train(tuner, 200)
    assert tuner.current == 2
    before = sim.steps_at[2]
    sim.train(tuner, 800)
    assert tuner.current == sim.threads == 1
    slow_steps = sim.steps_at[2] - before  # two-thread steps once they became slow
    assert 0 < slow_steps < 30, slow_steps  # short trials, fewer as they keep losing


def test_a_validation_pause_is_not_a_step_time():
    sim = SimulatedSteps(lambda n, step: 0.010)
    tuner = _tuner(sim)
    sim.train(tuner, 20)
    tuner.pause()
    sim.now += 5.0  # validation and a checkpoint
    sim.train(tuner, 20)
    assert max(tuner.step_seconds.values()) == pytest.approx(0.010)


def test_a_cpu_run_tunes_its_threads_when_dlrun_chose_them(dlrun, tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cpus", lambda: 2)
    dlrun("model=mlp", "trainer.epochs=1", "trainer.batch_size=8", "device=cpu")
    record = read_metrics(run_dirs(tmp_path)[0])["threads"]
    assert record["why"] == "2 usable CPUs" and record["tune"] is True
    assert set(record["tuning"]["step_ms"]) == {"1", "2"}  # both counts were measured
