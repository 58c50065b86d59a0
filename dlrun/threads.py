"""CPU threads: how many torch may use in a run (`plan`); a CPU training run then picks between
one and that many while it trains (dlrun/thread_tuner.py, which has the measurements).

`trainer.threads=N` or OMP_NUM_THREADS fix the count; `auto` plans the usable CPUs, shared by the
ranks torchrun starts on this machine, less the data-loading workers.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from dataclasses import asdict, dataclass

_WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def usable_cpu_ids() -> set[int]:
    """The CPUs this process may run on (a container's or taskset's limit, not the machine's);
    empty where the platform cannot say."""
    return set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()


def usable_cpus() -> int:
    """How many CPUs this process may run on."""
    return len(usable_cpu_ids()) or os.cpu_count() or 1


@dataclass(frozen=True)
class ThreadPlan:
    """What a run uses, recorded in metrics.json as `threads`."""

    torch: int  # intra-op threads
    why: str
    openmp_wait: str  # the wait policy in force (as the environment set it)
    tune: bool = False  # chosen from the CPUs: a CPU training run may measure 1 against `torch`


def plan(
    setting: int | str,
    environ: MutableMapping[str, str] = os.environ,
    loader_workers: int = 0,
    deterministic: bool = False,
) -> ThreadPlan:
    """Threads for one run. `setting` is trainer.threads: a number, or auto = the usable CPUs
    shared by the ranks torchrun starts on this machine, less the data-loading workers. With
    `deterministic` (trainer.deterministic) the count is never tuned while training: a tuner
    reacts to other processes' load, and another thread count sums in another order."""
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
    if deterministic:
        why += " (trainer.deterministic: fixed)"
    # torchrun ranks step in lockstep: one rank's timing says little about its own threads
    return ThreadPlan(threads, why, wait, tune=threads > 1 and ranks == 1 and not deterministic)


def apply(thread_plan: ThreadPlan) -> dict[str, object]:
    """Set torch's intra-op threads; returns the plan as metrics.json records it."""
    import torch

    if torch.get_num_threads() != thread_plan.torch:
        torch.set_num_threads(thread_plan.torch)
    return asdict(thread_plan)
