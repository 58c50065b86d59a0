"""CPU thread policy (dlrun/threads.py): threads per run, and the tuner that picks one thread or
more from measured step times while a CPU run trains."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from dlrun import thread_tuner, threads
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
    """A clock that advances by each step's cost, which depends on the thread count in force,
    and a CPU reading of other processes' busy cores: the tuner's decisions on known figures
    (real timings would make the test flaky; CpuMeter is tested on a real process below)."""

    def __init__(self, cost, others=lambda step: 0.0) -> None:  # cost(threads, step) -> s
        self.cost, self.others, self.now, self.threads, self.step = cost, others, 0.0, 0, 0
        self.steps_at: dict[int, int] = {}

    def set_threads(self, n: int) -> None:
        self.threads = n

    def train(self, tuner: thread_tuner.ThreadTuner, steps: int) -> None:
        for _ in range(steps):
            self.now += self.cost(self.threads, self.step)
            self.steps_at[self.threads] = self.steps_at.get(self.threads, 0) + 1
            self.step += 1
            tuner.after_step()

    def tuner(self, cpus: int = 2) -> thread_tuner.ThreadTuner:
        return thread_tuner.ThreadTuner(
            cpus,
            usable=cpus,
            clock=lambda: self.now,
            set_threads=self.set_threads,
            others_busy=lambda: self.others(self.step),
        )


def test_a_lone_run_on_two_cores_keeps_both_threads_and_never_tries_one():
    sim = SimulatedSteps(lambda n, step: {1: 0.010, 2: 0.008}[n])
    tuner = sim.tuner()
    assert sim.threads == 2  # nothing else ran while it started
    sim.train(tuner, 300)
    assert sim.steps_at == {2: 300} and tuner.switches == 0
    assert tuner.record() == {
        "threads": 2,
        "step_ms": {"2": 8.0},
        "switches": 0,
        "others_busy_cores": 0.0,
    }


def test_a_lone_run_on_more_cores_tries_one_thread_once_late_and_keeps_its_threads():
    sim = SimulatedSteps(lambda n, step: {1: 0.010, 4: 0.006}[n])
    tuner = sim.tuner(cpus=4)
    sim.train(tuner, 60)
    assert sim.steps_at == {4: 60}  # not in a run's first 64 steps
    sim.train(tuner, 300)
    assert tuner.current == sim.threads == 4 and tuner.switches == 0
    assert sim.steps_at[1] == 2  # tried once, stopped after two steps 25% slower


def test_a_short_run_of_long_steps_keeps_its_threads():
    # ResNet-18 on 2 cores: 0.7 s steps, one thread 1.8x slower; a trial of one thread in the
    # first epochs cost 18-step runs 9-37%
    sim = SimulatedSteps(lambda n, step: {1: 1.26, 2: 0.70}[n])
    tuner = sim.tuner()
    sim.train(tuner, 200)
    assert sim.steps_at == {2: 200} and tuner.switches == 0


def test_a_run_that_starts_beside_a_busy_process_starts_on_one_thread():
    sim = SimulatedSteps(lambda n, step: {1: 0.010, 2: 0.100}[n], others=lambda step: 1.0)
    tuner = sim.tuner()
    assert sim.threads == 1
    sim.train(tuner, 1000)
    assert tuner.current == 1 and 2 not in sim.steps_at  # never tried: no free core


def test_a_model_too_small_to_share_moves_to_one_thread_and_retries_rarely():
    sim = SimulatedSteps(lambda n, step: {1: 0.010, 4: 0.012}[n])
    tuner = sim.tuner(cpus=4)
    sim.train(tuner, 3000)
    assert tuner.current == sim.threads == 1 and tuner.switches == 1
    # 2 warm-up steps and 64 at two threads before one thread is tried, then trials of 0.05 s
    # (5 steps), doubling apart from 64 steps
    assert 64 <= sim.steps_at[4] <= 2 + 64 + 14 + 6 * 5


def test_one_thread_within_the_noise_of_two_does_not_take_the_run():
    # a streamed folder decoded in the training process: steps are mostly single-threaded work
    sim = SimulatedSteps(lambda n, step: {1: 0.0092, 4: 0.010}[n])  # 8% faster
    tuner = sim.tuner(cpus=4)
    sim.train(tuner, 3000)
    assert tuner.current == sim.threads == 4 and tuner.switches == 0
    assert 1 in tuner.step_seconds  # it was tried


def test_a_run_makes_room_when_another_process_takes_a_core_and_takes_it_back_after():
    # from step 200 to 600 another process keeps a core busy: two threads become 10x slower
    def busy(step):
        return 1.0 if 200 <= step < 600 else 0.0

    sim = SimulatedSteps(lambda n, s: 0.010 if n == 1 else (0.100 if busy(s) else 0.008), busy)
    tuner = sim.tuner()
    sim.train(tuner, 200)
    assert tuner.current == 2
    before = sim.steps_at[2]
    sim.train(tuner, 300)
    assert tuner.current == sim.threads == 1
    assert sim.steps_at[2] - before <= 3  # one window of slow steps, no trial
    sim.train(tuner, 200)
    assert tuner.current == sim.threads == 2  # the core came back


def test_without_a_cpu_reading_a_slowdown_still_moves_the_run_to_one_thread():
    sim = SimulatedSteps(lambda n, s: 0.010 if n == 1 else (0.008 if s < 200 else 0.100))
    sim.others = lambda step: None  # no /proc/stat (not Linux)
    tuner = sim.tuner()
    assert sim.threads == 1  # nothing known: the safe start
    sim.train(tuner, 200)
    assert tuner.current == 2
    before = sim.steps_at[2]
    sim.train(tuner, 800)
    assert tuner.current == sim.threads == 1
    assert 0 < sim.steps_at[2] - before < 30  # short retries, further apart as they lose


def test_a_validation_pause_is_not_a_step_time():
    sim = SimulatedSteps(lambda n, step: 0.010)
    tuner = sim.tuner()
    sim.train(tuner, 60)
    tuner.pause()
    sim.now += 5.0  # validation and a checkpoint
    sim.train(tuner, 60)
    assert max(tuner.step_seconds.values()) == pytest.approx(0.010)


def test_the_cpu_meter_sees_another_busy_process():
    meter = thread_tuner.CpuMeter()
    if meter.last is None:
        pytest.skip("no /proc/stat here")
    busy = subprocess.Popen(  # busy for 1 s, then idle until killed
        [sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<1: pass\n"
         "time.sleep(60)"]
    )  # fmt: skip
    try:
        time.sleep(1.5)
        assert meter.others_busy() >= 0.5  # it ran for 1 s on one of our CPUs (at least half)
    finally:
        busy.kill()
        busy.wait()


def test_a_worker_this_process_waited_for_is_not_another_process():
    # an image folder's decoding pass runs in worker processes before training: a run must not
    # then start on one thread as if another process had taken a core
    meter = thread_tuner.CpuMeter()
    if meter.last is None:
        pytest.skip("no /proc/stat here")
    before = meter.last
    worker = subprocess.Popen(
        [sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<1: pass"]
    )
    worker.wait()
    meter.others_busy()
    # its second of CPU is this process's own (which others_busy subtracts from the machine's
    # busy time); the test process itself only waited. (Not others_busy() < 0.5: another test
    # worker may keep the other core busy meanwhile.)
    assert meter.last[2] - before[2] >= 0.8


def test_a_cpu_run_tunes_its_threads_when_dlrun_chose_them(dlrun, tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cpus", lambda: 2)
    dlrun("model=mlp", "trainer.epochs=2", "trainer.batch_size=4", "device=cpu")
    record = read_metrics(run_dirs(tmp_path)[0])["threads"]
    assert record["why"] == "2 usable CPUs" and record["tune"] is True
    tuning = record["tuning"]  # only a tuned run has it
    assert record["torch"] in (1, 2) and tuning["step_ms"]  # it measured its steps
