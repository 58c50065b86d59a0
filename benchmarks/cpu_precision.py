"""What mixed precision costs on this CPU: the real `dlrun` at trainer.precision=32, bf16, fp16.

    python benchmarks/cpu_precision.py                      # cnn and resnet18 on digits-as-images
    python benchmarks/cpu_precision.py --repeats 3

Each run is its own process; training seconds come from metrics.json. Prints each precision's
median training time and its ratio to 32-bit. CPUs without native bf16/fp16 instructions
(avx512_bf16, amx_bf16, avx512_fp16, amx_fp16) emulate them, which is why dlrun warns there.
Asserts nothing.
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
MODELS = {
    "cnn": ["model=cnn", "data=digits", "trainer.epochs=1"],
    "resnet18": [
        "model=resnet18",
        "data=digits",
        "trainer.epochs=1",
        "trainer.limit_train_batches=5",
    ],
}


def train_seconds(args: list[str]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        cmd = [sys.executable, "-m", "dlrun", *args, "plots=false", "trainer.progress=false"]
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(proc.stderr[-2000:])
        (record,) = Path(tmp, "outputs").rglob("metrics.json")
        return json.loads(record.read_text())["train_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--repeats", type=int, default=1)
    opts = parser.parse_args()
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    native = [f for f in ("avx512_bf16", "amx_bf16", "avx512_fp16", "amx_fp16") if f in flags]
    print(f"native low-precision CPU instructions: {native or 'none'}")
    print("| model | 32 (s) | bf16 (s) | bf16/32 | fp16 (s) | fp16/32 |")
    print("|---|---|---|---|---|---|")
    for model in opts.models:
        times: dict[str, list[float]] = {}
        for _ in range(opts.repeats):
            for precision in ("32", "bf16", "fp16"):
                args = [*MODELS[model], f"trainer.precision={precision}"]
                times.setdefault(precision, []).append(train_seconds(args))
        t = {p: statistics.median(v) for p, v in times.items()}
        print(
            f"| {model} | {t['32']:.2f} | {t['bf16']:.2f} | {t['bf16'] / t['32']:.1f} "
            f"| {t['fp16']:.2f} | {t['fp16'] / t['32']:.1f} |"
        )


if __name__ == "__main__":
    main()
