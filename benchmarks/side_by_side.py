"""Two dlrun runs at once against one alone, under each CPU thread policy.

    python benchmarks/side_by_side.py                       # every policy, both workloads
    python benchmarks/side_by_side.py --repeats 3 --policies dlrun default

Each run is the real `dlrun` command in its own process; its training time comes from its
metrics.json (`train_seconds`: training steps only, no start-up or validation). For each policy
and workload it prints the median training time of a run alone, of each of two runs started
together, the ratio pair/alone (goal <= 1.5) and the lone run against the `default` policy (goal:
no more than 5% slower). Runs of a repeat are interleaved over policies, since this shared
machine drifts over minutes. Prints figures only; asserts nothing.

Policies (the environment each run starts with; dlrun keeps what the environment sets). All but
`dlrun` fix the thread count (trainer.threads = the usable CPUs, or OMP_NUM_THREADS=1), so dlrun's
tuner stays off and each policy is measured as it is:
  default   libgomp's own: threads spin 300,000 rounds before sleeping (plain torch's behaviour)
  passive   OMP_WAIT_POLICY=PASSIVE: waiting threads sleep at once
  spinN     GOMP_SPINCOUNT=N: waiting threads spin N rounds, then sleep
  one       OMP_NUM_THREADS=1
  dlrun     nothing set: what dlrun chooses (dlrun/threads.py: the usable CPUs or one thread,
            whichever its measured steps say is faster, re-checked as the run goes)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
THREAD_VARS = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MKL_NUM_THREADS")
POLICIES = {
    "default": {"GOMP_SPINCOUNT": "300000"},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "spin1k": {"GOMP_SPINCOUNT": "1000"},
    "spin10k": {"GOMP_SPINCOUNT": "10000"},
    "spin30k": {"GOMP_SPINCOUNT": "30000"},
    "one": {"OMP_NUM_THREADS": "1"},
    "dlrun": {},
}
WORKLOADS = {
    "mlp_digits": ["model=mlp", "data=digits", "trainer.epochs=30"],
    "cnn_digits": ["model=cnn", "data=digits", "trainer.epochs=4"],
    # an LSTM text classifier on a 2,000-document CSV (tests/textdata.py's keyword corpus)
    "lstm_text": [
        "model=lstm",
        "data=text_csv",
        "data.path={text_csv}",
        "data.label_column=topic",
        "data.text_columns=[headline,body]",
        "trainer.batch_size=32",
        "trainer.epochs=3",
    ],
}


def _env(policy: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env["PYTHONPATH"] = str(REPO)
    return {**env, **POLICIES[policy]}


def _start(policy: str, args: list[str], cwd: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "dlrun", *args, "plots=false", "trainer.progress=false"]
    if policy not in ("dlrun", "one"):  # a fixed count: dlrun's tuner stays off
        command.append(f"trainer.threads={len(os.sched_getaffinity(0))}")
    return subprocess.Popen(
        command, cwd=cwd, env=_env(policy), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


CHOSEN: dict[tuple[str, str, int], list[int]] = {}  # threads each run ended with


def _train_seconds(procs: list[subprocess.Popen], cwd: Path) -> list[tuple[float, int]]:
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"dlrun failed: {err.decode()[-2000:]}")
    records = [json.loads(p.read_text()) for p in (cwd / "outputs").rglob("metrics.json")]
    return [(r["train_seconds"], r["threads"]["torch"]) for r in records]


def measure(policy: str, args: list[str], together: int) -> list[tuple[float, int]]:
    """Training seconds and final thread count of each of `together` runs started together."""
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        procs = [_start(policy, args, cwd) for _ in range(together)]
        return _train_seconds(procs, cwd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES))
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=2)
    opts = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, {len(os.sched_getaffinity(0))} usable; {opts.repeats} repeats")
    sys.path.insert(0, str(REPO))
    from tests.textdata import write_labelled_csv

    data = Path(tempfile.mkdtemp())
    text_csv = write_labelled_csv(data / "news.csv", n=2000)
    workloads = {
        name: [arg.format(text_csv=text_csv) for arg in args] for name, args in WORKLOADS.items()
    }
    alone: dict[tuple[str, str], list[float]] = {}
    pair: dict[tuple[str, str], list[float]] = {}
    for _ in range(opts.repeats):
        for workload in opts.workloads:
            for policy in opts.policies:
                key = (workload, policy)
                for together, times in ((1, alone), (2, pair)):
                    runs = measure(policy, workloads[workload], together)
                    times.setdefault(key, []).extend(seconds for seconds, _ in runs)
                    CHOSEN.setdefault((*key, together), []).extend(n for _, n in runs)
    print(
        "| workload | policy | alone (s) | each of two (s) | pair/alone | alone vs default "
        "| threads alone / in pairs |"
    )
    print("|---|---|---|---|---|---|---|")
    for workload in opts.workloads:
        base = alone.get((workload, "default"))
        for policy in opts.policies:
            one = statistics.median(alone[(workload, policy)])
            two = statistics.median(pair[(workload, policy)])
            vs = f"{one / statistics.median(base):.2f}" if base else "-"
            chosen = "/".join(",".join(map(str, CHOSEN[(workload, policy, n)])) for n in (1, 2))
            print(
                f"| {workload} | {policy} | {one:.2f} | {two:.2f} | {two / one:.2f} | {vs} "
                f"| {chosen} |"
            )


if __name__ == "__main__":
    main()
