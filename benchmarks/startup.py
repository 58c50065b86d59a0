"""What a user waits for around the training: `dlrun debug=smoke`, `dlrun --help` and the default
`dlrun`, against a minimal script doing the same work by hand, in one run.

    python benchmarks/startup.py                 # 5 interleaved repeats
    python benchmarks/startup.py --repeats 9

The minimal script imports torch, reads the same digits table, builds the same MLP (64-128-10),
takes 3 Adam steps of batch 64 and saves a checkpoint: the floor of any training process here
(`import torch` and the torch._dynamo import that torch.optim makes on its first step). Each
command is its own process, timed wall-clock from spawn to exit; the runs of a repeat are
interleaved, since this shared machine drifts. Prints medians (min-max) and the goals' ratios;
asserts nothing. Goals (issue 14): smoke <= 1.15x minimal, --help < 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

MINIMAL = """
import torch
from torch import nn
from dlrun.data.bundled import load_digits  # numpy only: reads sklearn's bundled file

x, y = load_digits()
x, y = torch.tensor(x, dtype=torch.float32) / 16, torch.tensor(y)
model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for step in range(3):
    batch = slice(step * 64, step * 64 + 64)
    loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
    opt.zero_grad()
    loss.backward()
    opt.step()
torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, "last.pt")
"""

COMMANDS = {
    "minimal script": [sys.executable, "-c", MINIMAL],
    "dlrun debug=smoke": [sys.executable, "-m", "dlrun", "debug=smoke"],
    "dlrun --help": [sys.executable, "-m", "dlrun", "--help"],
    "dlrun (default run)": [sys.executable, "-m", "dlrun"],
}


def timed(command: list[str]) -> tuple[float, dict]:
    """Wall seconds from spawn to exit, and the run's metrics.json if it wrote one."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        started = time.perf_counter()
        proc = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if proc.returncode:
            raise SystemExit(f"{command} failed:\n{proc.stderr[-2000:]}")
        records = list(Path(tmp).rglob("metrics.json"))
        return wall, json.loads(records[0].read_text()) if records else {}


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    opts = parser.parse_args()
    walls: dict[str, list[float]] = {name: [] for name in COMMANDS}
    startup: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(opts.repeats):
        for name, command in COMMANDS.items():
            wall, record = timed(command)
            walls[name].append(wall)
            if record.get("startup_seconds") is not None:
                startup[name].append(record["startup_seconds"])
    print(f"{len(os.sched_getaffinity(0))} usable CPUs, {opts.repeats} repeats, wall seconds")
    print("| command | wall, median (min-max) | to first batch (from the command's start) |")
    print("|---|---|---|")
    for name in COMMANDS:
        first = _median(startup[name]) if startup[name] else "-"
        print(f"| `{name}` | {_median(walls[name])} | {first} |")
    ratios = [
        s / m for s, m in zip(walls["dlrun debug=smoke"], walls["minimal script"], strict=True)
    ]
    print(
        f"smoke / minimal, per repeat: median {statistics.median(ratios):.2f} "
        f"({min(ratios):.2f}-{max(ratios):.2f}); goal <= 1.15"
    )


if __name__ == "__main__":
    main()
