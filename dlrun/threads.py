"""CPU threads: how many torch uses in a run, and how its idle OpenMP threads wait.

Measured on a 2-core machine (benchmarks/side_by_side.py):
- libgomp's idle threads spin ~300,000 rounds before they sleep. Two torch processes with a
  thread per core each then spin against each other, and each trains 10-15x slower than alone.
- Sleeping at once (OMP_WAIT_POLICY=PASSIVE) cures that, but a lone tiny model pays a wake-up on
  every operator (~25% slower). A short spin keeps a lone run's speed and still yields the cores.
The wait policy is read once, when torch loads its OpenMP runtime: `prepare_openmp` must run
before `import torch` (the CLI calls it first thing). What the environment already sets wins.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from dataclasses import asdict, dataclass

# Rounds an idle OpenMP thread spins before it sleeps (libgomp's default is 300,000).
SPIN_ROUNDS = 10_000
_WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def prepare_openmp(environ: MutableMapping[str, str] = os.environ) -> None:
    """Before torch loads: a short spin for idle threads, unless the environment chose a policy."""
    if not any(var in environ for var in _WAIT_VARS):
        environ["GOMP_SPINCOUNT"] = str(SPIN_ROUNDS)


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
