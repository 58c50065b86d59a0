"""While a CPU run trains, pick how many threads torch uses: one, or up to the planned count,
from how busy other processes keep this process's CPUs and from measured step times.

Why not a fixed policy: measured on a 2-core machine with benchmarks/side_by_side.py (training
seconds of the default MLP on digits, 30 epochs; a run alone, and each of two runs together):

    policy                              alone   each of two   pair/alone   alone vs default
    libgomp default (spin 300,000)      0.90    9.34          10.4         1.00
    OMP_WAIT_POLICY=PASSIVE             1.36    1.10          0.81         1.52
    GOMP_SPINCOUNT=10000                1.21    6.44          5.31         1.35
    one thread (OMP_NUM_THREADS=1)      0.99    0.94          0.95         1.10

and for a small CNN: default 0.89 / 10.3x, PASSIVE 1.28 / 0.87x, one thread 1.17 / 0.95x.
Idle OpenMP threads spin, taking the cores another process needs: two runs side by side each
train 10x slower. Making them sleep (PASSIVE) costs a lone tiny model 1.4-1.5x (each operator
wakes its threads). One thread is fine side by side but 10-20% slower alone. So a run measures
how many cores other processes keep busy on its CPUs (/proc/stat less its own CPU time and
that of the workers it started and waited for, such as an image folder's decoding pass): it
starts with the threads the cores left free during its start-up can hold (one, safe beside
anything, where that is unknown), and reads again every window of steps. When other processes
take cores it drops to what is left at once; threads that freed cores can hold are tried for a
few steps and kept when they step 5% faster; with more than two threads planned, one thread is
tried once, after 64 steps (a model too small to share its work; tried at once it cost short
ResNet-18 runs 9-37%, and on 2 cores no model measured was faster on one thread alone: linear
0.61 against 0.29 ms a step, MLP 1.05 against 0.87, CNN 9.7 against 5.0). Where /proc/stat
cannot be read, a slowdown of 1.5x or a retry every so many steps (doubling while it loses)
stands in for the reading.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlrun.threads import ThreadPlan, usable_cpu_ids, usable_cpus


class CpuMeter:
    """Cores that other processes kept busy on this process's CPUs since the last reading
    (Linux's /proc/stat, less this process's own CPU time); None where it cannot be read."""

    def __init__(self) -> None:
        self.names = {f"cpu{i}" for i in usable_cpu_ids()}
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.last = self._read()

    def _read(self) -> tuple[float, float, float] | None:
        try:
            lines = Path("/proc/stat").read_text().splitlines()
        except OSError:
            return None
        busy = 0
        for line in lines:
            name, *values = line.split()
            if name in self.names:  # user nice system idle iowait irq softirq steal
                v = [int(x) for x in values[:8]]
                busy += v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
        own = os.times()  # with the children it waited for: decoding workers did our work
        own_seconds = own.user + own.system + own.children_user + own.children_system
        return time.monotonic(), busy / self.tick, own_seconds

    def others_busy(self) -> float | None:
        now = self._read()
        last, self.last = self.last, now
        if now is None or last is None or now[0] - last[0] < 0.05:  # too few clock ticks
            return None
        return max(0.0, (now[1] - last[1]) - (now[2] - last[2])) / (now[0] - last[0])


_startup_meter: CpuMeter | None = None


def note_start() -> None:
    """Called as the command starts: the first reading then covers the start-up, so a run can
    begin with the threads the free cores can hold instead of one."""
    global _startup_meter
    _startup_meter = CpuMeter()


class ThreadTuner:
    """Chooses the thread count of a CPU run between 1 and `threads`, window by window.

    A window is at least `window_steps` steps and `window_seconds` seconds (enough clock ticks
    for the CPU reading), after `warmup` steps (the first optimizer step imports torch._dynamo).
    Its median step time (a checkpoint write inside it does not count) is the count's speed. A
    trial of more threads needs no CPU reading: `trial_seconds` of steps (a trial that loses
    costs what it runs; at 0.15 s it was half of the default MLP run's steps), kept when 5%
    faster. A trial of one thread runs a whole window and must be 10% faster; either trial stops
    after two steps 25% slower.
    """

    def __init__(
        self,
        threads: int,
        usable: int | None = None,
        window_steps: int = 3,
        window_seconds: float = 0.15,
        trial_seconds: float = 0.05,
        warmup: int = 2,
        retry_after: int = 64,
        clock: Callable[[], float] = time.perf_counter,
        set_threads: Callable[[int], None] | None = None,
        others_busy: Callable[[], float | None] | None = None,
    ) -> None:
        if set_threads is None:
            import torch

            set_threads = torch.set_num_threads
        self.planned, self.usable = threads, usable or threads
        self.window_steps, self.window_seconds, self.warmup = window_steps, window_seconds, warmup
        self.trial_seconds = trial_seconds
        self.clock, self.set_threads = clock, set_threads
        self.others_busy = others_busy or CpuMeter().others_busy
        self.base_retry = self.retry_after = retry_after
        self.trial: int | None = None  # the count on trial, if any
        self.times: list[float] = []  # step seconds of the open window
        self.window_total = 0.0  # their sum
        self.step_seconds: dict[int, float] = {}  # latest median per count
        self.since_trial, self.switches = 0, 0
        self._last: float | None = None
        # what the free cores held since the command started; one thread when unknown
        self.last_others: float | None = self.others_busy()
        self.current = 1 if self.last_others is None else self._target(self.last_others)
        set_threads(self.current)

    def pause(self, *_: Any) -> None:
        """Validation or a checkpoint ran since the last step: that gap is not a step time."""
        self._last = None

    def after_step(self, *_: Any) -> None:
        now = self.clock()
        last, self._last = self._last, now
        if last is None:
            return
        if self.warmup:
            self.warmup -= 1
            return
        self.since_trial += 1
        self.times.append(now - last)
        self.window_total += now - last
        if self.trial is not None:
            self._trial_step()
        elif self._window_full(self.window_seconds):
            self._window_done()

    def _window_full(self, seconds: float) -> bool:
        return len(self.times) >= self.window_steps and self.window_total >= seconds

    def _open_window(self) -> None:
        self.times, self.window_total = [], 0.0

    def _window_done(self) -> None:
        median = statistics.median(self.times)
        self._open_window()
        before = self.step_seconds.get(self.current)
        self.step_seconds[self.current] = median
        others = self.last_others = self.others_busy()
        target = self._target(others)
        if target < self.current:  # other processes took cores: make room now, no trial
            self._switch(target)
        elif target > self.current and (
            target not in self.step_seconds or self.since_trial >= self.retry_after
        ):
            self._start_trial(target)
        elif self.current > 1 and (
            (
                1 not in self.step_seconds
                and self.planned > 2
                and self.since_trial >= self.base_retry
            )
            or (before is not None and median > 1.5 * before)
        ):
            # once, for a model too small to share its work among more than two threads (on
            # 2 cores every model measured stepped faster on both alone, and the trial's noisy
            # wins cost more than it found), after `base_retry` steps so the trial costs a few
            # percent of the run at most (its first steps at 1 thread cost ResNet-18 runs of 18
            # steps 9-37%); or at once when slower for a reason the CPU reading did not show
            self._start_trial(1)

    def _target(self, others: float | None) -> int:
        """The threads the free cores can hold (all planned when the reading is unknown)."""
        if others is None:
            return self.planned
        return max(1, min(self.planned, round(self.usable - others)))

    def _trial_step(self) -> None:
        assert self.trial is not None
        reference = self.step_seconds[self.current]
        if len(self.times) == 2 and (first := statistics.median(self.times)) > 1.25 * reference:
            self._end_trial(first, won=False)  # clearly slower: stop paying
            return
        # Fewer threads must win clearly, over a whole window: where a step is mostly
        # single-threaded work (a streamed folder decoded in the training process) one thread
        # and two differ by less than the noise, and a 5% win over a few steps switched half of
        # such LeNet runs (benchmarks/image_folder.py).
        more = self.trial > self.current
        if self._window_full(self.trial_seconds if more else self.window_seconds):
            median = statistics.median(self.times)
            self._end_trial(median, won=median < (0.95 if more else 0.90) * reference)

    def _start_trial(self, count: int) -> None:
        self.trial = count
        self._open_window()
        self.set_threads(count)

    def _end_trial(self, median: float, won: bool) -> None:
        assert self.trial is not None
        self.step_seconds[self.trial] = median
        if won:
            self._switch(self.trial)
        else:
            self.set_threads(self.current)
            self.retry_after = min(2 * self.retry_after, 1024)
        self.trial, self.since_trial = None, 0
        self._open_window()

    def _switch(self, count: int) -> None:
        self.current, self.retry_after = count, self.base_retry
        self.switches += 1
        self.set_threads(count)

    def record(self) -> dict[str, Any]:
        """For metrics.json: the count in use, the last step time measured with each count, and
        the cores other processes kept busy in the last window."""
        others = None if self.last_others is None else round(self.last_others, 2)
        return {
            "threads": self.current,
            "step_ms": {str(k): round(v * 1000, 3) for k, v in sorted(self.step_seconds.items())},
            "switches": self.switches,
            "others_busy_cores": others,
        }


def tuner_for(plan: ThreadPlan, device_type: str) -> ThreadTuner | None:
    """A tuner for a training run on the CPU whose thread count dlrun chose; else None."""
    if not (plan.tune and device_type == "cpu"):
        return None
    meter = _startup_meter or CpuMeter()
    return ThreadTuner(plan.torch, usable=usable_cpus(), others_busy=meter.others_busy)
