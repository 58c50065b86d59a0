"""CPU threads: how many torch uses in a run, chosen while it trains from measured step times.

Measured on a 2-core machine with benchmarks/side_by_side.py (training seconds of the default
MLP on digits, 30 epochs; a run alone, and each of two runs started together):

    policy                              alone   each of two   pair/alone   alone vs default
    libgomp default (spin 300,000)      0.90    9.34          10.4         1.00
    OMP_WAIT_POLICY=PASSIVE             1.36    1.10          0.81         1.52
    GOMP_SPINCOUNT=10000                1.21    6.44          5.31         1.35
    one thread (OMP_NUM_THREADS=1)      0.99    0.94          0.95         1.10

and for a small CNN: default 0.89 / 10.3x, PASSIVE 1.28 / 0.87x, one thread 1.17 / 0.95x.
Idle OpenMP threads that spin take the cores another process needs, so two runs side by side
each train 10x slower; making them sleep (PASSIVE) costs a lone tiny model 1.4-1.5x, since each
operator then wakes its threads. No fixed policy is both fast alone and fast beside another run,
so a CPU training run measures instead (`ThreadTuner`): it starts on one thread (safe beside
anything), times a few steps, tries the planned threads, keeps whichever steps faster, and tries
the other again later, at once if its steps slow down (another run started). With libgomp's
default wait policy this keeps a lone run's multi-threaded speed and falls back to one thread
beside another run. `trainer.threads=N` or OMP_NUM_THREADS fix the count (no tuning).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, MutableMapping
from dataclasses import asdict, dataclass
from typing import Any

_WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def usable_cpus() -> int:
    """CPUs this process may run on (a container's or taskset's limit, not the machine's)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


@dataclass(frozen=True)
class ThreadPlan:
    """What a run uses, recorded in metrics.json as `threads`."""

    torch: int  # intra-op threads
    why: str
    openmp_wait: str  # the wait policy in force (as the environment set it)
    tune: bool = False  # chosen from the CPUs: a CPU training run may measure 1 against `torch`


def plan(
    setting: int | str, environ: MutableMapping[str, str] = os.environ, loader_workers: int = 0
) -> ThreadPlan:
    """Threads for one run. `setting` is trainer.threads: a number, or auto = the usable CPUs
    shared by the ranks torchrun starts on this machine, less the data-loading workers."""
    wait = next((f"{v}={environ[v]}" for v in _WAIT_VARS if v in environ), "libgomp default")
    if setting != "auto":
        return ThreadPlan(int(setting), "trainer.threads", wait)
    omp = environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()  # "4" or a nested "4,2"
    if omp.isdigit() and int(omp) > 0:
        return ThreadPlan(int(omp), "OMP_NUM_THREADS", wait)
    cpus, ranks = usable_cpus(), int(environ.get("LOCAL_WORLD_SIZE", "1"))
    threads = max(1, cpus // max(1, ranks) - loader_workers)
    why = f"{cpus} usable CPUs"
    if ranks > 1:
        why += f" / {ranks} local ranks"
    if loader_workers:
        why += f" - {loader_workers} data workers"
    # torchrun ranks step in lockstep: one rank's timing says little about its own threads
    return ThreadPlan(threads, why, wait, tune=threads > 1 and ranks == 1)


def apply(thread_plan: ThreadPlan) -> dict[str, object]:
    """Set torch's intra-op threads; returns the plan as metrics.json records it."""
    import torch

    if torch.get_num_threads() != thread_plan.torch:
        torch.set_num_threads(thread_plan.torch)
    return asdict(thread_plan)


class ThreadTuner:
    """Chooses between one thread and the planned threads while a CPU run trains, by the median
    step time of short windows (a median: a checkpoint write inside a window does not count).

    Starts on one thread, times `window` steps after `warmup` steps (the first optimizer step
    imports torch._dynamo), then tries the other count. A trial stops after two steps when they
    are clearly slower (beside a spinning run they are ~10x slower: a long trial would cost more
    than tuning saves); a count must be 5% faster to win. The count not in use is tried again
    after `retry_after` steps, doubling each time it loses (up to 1024), and at once when a
    window is 1.5x slower than the last one measured for the same count.
    """

    def __init__(
        self,
        threads: int,
        window: int = 5,
        warmup: int = 3,
        retry_after: int = 64,
        clock: Callable[[], float] = time.perf_counter,
        set_threads: Callable[[int], None] | None = None,
    ) -> None:
        if set_threads is None:
            import torch

            set_threads = torch.set_num_threads
        self.planned, self.window, self.warmup, self.clock = threads, window, warmup, clock
        self.set_threads = set_threads
        self.base_retry = self.retry_after = retry_after
        self.current = 1
        self.trial: int | None = None  # the count being tried, while a trial runs
        self.times: list[float] = []  # step seconds of the open window
        self.step_seconds: dict[int, float] = {}  # latest window median per count
        self.since_trial = 0  # steps since the last trial ended
        self.switches = 0
        self._last: float | None = None
        set_threads(1)

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
        if self.trial is not None:
            self._trial_step()
        elif len(self.times) >= self.window:
            self._window_done()

    def _window_done(self) -> None:
        median, self.times = statistics.median(self.times), []
        before = self.step_seconds.get(self.current)
        self.step_seconds[self.current] = median
        slowed = before is not None and median > 1.5 * before
        if slowed or self.since_trial >= self.retry_after or self._untried():
            if slowed:
                self.retry_after = self.base_retry
            self._start_trial(self._other())

    def _trial_step(self) -> None:
        assert self.trial is not None
        reference = self.step_seconds[self.current]
        median = statistics.median(self.times)
        if len(self.times) == 2 and median > 1.25 * reference:  # clearly slower: stop paying
            self.step_seconds[self.trial] = median
            self._end_trial(None)
        elif len(self.times) >= self.window:
            self.step_seconds[self.trial] = median
            self._end_trial(self.trial if median < 0.95 * reference else None)

    def _start_trial(self, count: int) -> None:
        self.trial, self.times = count, []
        self.set_threads(count)

    def _end_trial(self, winner: int | None) -> None:
        if winner is None:
            self.set_threads(self.current)
            self.retry_after = min(2 * self.retry_after, 1024)
        else:
            self.current, self.retry_after = winner, self.base_retry
            self.switches += 1
        self.trial, self.times, self.since_trial = None, [], 0

    def _other(self) -> int:
        return self.planned if self.current == 1 else 1

    def _untried(self) -> bool:
        return self._other() not in self.step_seconds

    def record(self) -> dict[str, Any]:
        """For metrics.json: the count in use and the last step time measured with each."""
        return {
            "threads": self.current,
            "step_ms": {str(k): round(v * 1000, 3) for k, v in sorted(self.step_seconds.items())},
            "switches": self.switches,
        }


def tuner_for(thread_plan: ThreadPlan, device_type: str) -> ThreadTuner | None:
    """A tuner for a training run on the CPU whose thread count dlrun chose; else None."""
    return ThreadTuner(thread_plan.torch) if thread_plan.tune and device_type == "cpu" else None
