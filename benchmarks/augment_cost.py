"""What each data.augment policy and MixUp/CutMix cost per training batch, on the CPU (or the GPU
with --device cuda), against the normalisation alone.

    python benchmarks/augment_cost.py                     # batch 64, 1x28x28 and 3x32x32
    python benchmarks/augment_cost.py --batch-size 512 --device cuda

Times dlrun's own ImageBatchTransform on random uint8 batches (median of --repeats calls after
warm-up). Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlrun.data.augment import BatchMixer, ImageBatchTransform  # noqa: E402

CASES = {
    "none": {},
    "basic": {"crop_padding": 4, "flip": True},
    "trivialaugment": {"crop_padding": 4, "flip": True, "policy": "trivialaugment"},
    "randaugment": {"crop_padding": 4, "flip": True, "policy": "randaugment"},
    "autoaugment": {"crop_padding": 4, "flip": True, "policy": "autoaugment"},
    "basic+mixup+cutmix": {"crop_padding": 4, "flip": True, "mix": True},
}


def per_batch_ms(tf: ImageBatchTransform, batch: dict, repeats: int, device: str) -> float:
    times = []
    for i in range(repeats + 5):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        tf(batch)
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= 5:
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(f"batch {args.batch_size}, {args.device}, torch threads {torch.get_num_threads()}")
    print(f"{'policy':20} {'1x28x28 ms':>11} {'3x32x32 ms':>11}")
    for name, kw in CASES.items():
        row = []
        for c, size in ((1, 28), (3, 32)):
            x = torch.randint(0, 256, (args.batch_size, c, size, size), dtype=torch.uint8)
            y = torch.randint(0, 10, (args.batch_size,))
            batch = {"x": x.to(args.device), "y": y.to(args.device)}
            mixer = BatchMixer(10, 0.2, 1.0) if kw.get("mix") else None
            options = {k: v for k, v in kw.items() if k != "mix"}
            tf = ImageBatchTransform([0.5] * c, [0.25] * c, mixer=mixer, **options)
            row.append(per_batch_ms(tf, batch, args.repeats, args.device))
        print(f"{name:20} {row[0]:11.2f} {row[1]:11.2f}")


if __name__ == "__main__":
    main()
