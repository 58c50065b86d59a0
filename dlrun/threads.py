"""CPU threads: how many torch uses in a run, and how its idle OpenMP threads wait.

Measured on a 2-core machine with benchmarks/side_by_side.py (training seconds of the default
MLP on digits, 30 epochs; a run alone, and each of two runs started together):

    policy                              alone   each of two   pair/alone   alone vs default
    libgomp default (spin 300,000)      0.90    9.34          10.4         1.00
    OMP_WAIT_POLICY=PASSIVE             1.36    1.10          0.81         1.52
    GOMP_SPINCOUNT=10000                1.21    6.44          5.31         1.35
    one thread (OMP_NUM_THREADS=1)      0.99    0.94          0.95         1.10

and for a small CNN: default 0.89 / 10.3x, PASSIVE 1.28 / 0.87x, one thread 1.17 / 0.95x.
Idle threads that spin take the cores another process needs: two runs side by side each train
10x slower. dlrun therefore makes idle threads sleep (PASSIVE) unless the environment chose a
policy; this costs a lone run of a tiny model ~1.4-1.5x (each operator wakes the threads), and
nothing measurable where operators are large. A lone small-model user gets the old speed back
with OMP_WAIT_POLICY=ACTIVE, or trainer.threads=1 (~1.1x, and fine side by side).
The wait policy is read once, when torch loads its OpenMP runtime: `prepare_openmp` must run
before `import torch` (the command calls it first thing). What the environment sets wins.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from dataclasses import asdict, dataclass

_WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def prepare_openmp(environ: MutableMapping[str, str] = os.environ) -> None:
    """Before torch loads: idle threads sleep (PASSIVE), unless the environment chose a policy."""
    if not any(var in environ for var in _WAIT_VARS):
        environ["OMP_WAIT_POLICY"] = "PASSIVE"


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
    return ThreadPlan(threads, why, wait)


def apply(thread_plan: ThreadPlan) -> dict[str, object]:
    """Set torch's intra-op threads; returns the plan as metrics.json records it."""
    import torch

    if torch.get_num_threads() != thread_plan.torch:
        torch.set_num_threads(thread_plan.torch)
    return asdict(thread_plan)
