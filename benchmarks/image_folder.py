"""An image folder against the same images served from memory, and the choice of data workers
and torch threads for a folder, through the real `dlrun` command.

    python benchmarks/image_folder.py                         # LeNet, 5,000 images, 4 epochs
    python benchmarks/image_folder.py --images 2000 --epochs 3 --cases idx folder streamed
    python benchmarks/image_folder.py --model resnet18 --limit 10 --cases streamed w0t2 w2t1

The same 28 px greyscale digits (tests/datasets.py's learnable class images; no real MNIST is
reachable offline) are written twice in real formats: MNIST idx files, and a PNG folder with one
sub-folder per class (a test folder beside it). Each case is its own `dlrun` process; its epoch
time is the median of history.csv's `seconds` (training steps only) over the epochs after the
first; `startup_seconds` (metrics.json) holds the one decoding pass of an in-memory folder.
Cases run interleaved over `--repeats`, since this shared machine drifts over minutes. The
thread environment is left to dlrun (OMP_NUM_THREADS is removed) unless a case fixes it.
Prints figures and ratios against `idx`; asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# case -> overrides after the data choice (folder cases add data.path/test_path)
CASES = {
    "idx": ["data=mnist"],  # MNIST idx files, decoded into uint8 tensors (the reference)
    "folder": ["data=image_folder"],  # the default: a small folder is decoded once into memory
    "folder_w0": ["data=image_folder", "data.num_workers=0"],  # decoded by the main process
    "streamed": ["data=image_folder", "data.memory_limit_mb=0"],  # workers and threads: auto
    "w0t1": ["data=image_folder", "data.memory_limit_mb=0", "data.num_workers=0"],
    "w0t2": ["data=image_folder", "data.memory_limit_mb=0", "data.num_workers=0"],
    "w1t1": ["data=image_folder", "data.memory_limit_mb=0", "data.num_workers=1"],
    "w2t1": ["data=image_folder", "data.memory_limit_mb=0", "data.num_workers=2"],
    "w2t2": ["data=image_folder", "data.memory_limit_mb=0", "data.num_workers=2"],
    "mem_t1": ["data=image_folder"],  # decoded into memory, torch threads fixed
    "mem_t2": ["data=image_folder"],
}
THREADS = {
    "w0t1": 1,
    "w0t2": 2,
    "w1t1": 1,
    "w2t1": 1,
    "w2t2": 2,
    "mem_t1": 1,
    "mem_t2": 2,
}  # trainer.threads fixed by the case


def write_data(root: Path, n: int) -> None:
    from PIL import Image

    from tests.datasets import class_images, write_mnist

    train, train_y = class_images(n, 10, (28, 28), seed=1)
    test, test_y = class_images(max(n // 5, 10), 10, (28, 28), seed=2)
    write_mnist(
        root, images={"train": train, "test": test}, labels={"train": train_y, "test": test_y}
    )
    names = [f"{i} - digit" for i in range(10)]
    for split, x, y in (("pics", train, train_y), ("pics_test", test, test_y)):
        for i, (img, label) in enumerate(zip(x, y, strict=True)):
            folder = root / split / names[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(folder / f"{i:05d}.png")


def run_case(case: str, root: Path, args: argparse.Namespace, out: Path) -> dict[str, float]:
    data = [f"data.root={root}", "data.download=false"]
    if case != "idx":
        data = [f"data.path={root / 'pics'}", f"data.test_path={root / 'pics_test'}"]
        data += ["data.image_size=28", "data.augment=none"]
    extra = [f"trainer.threads={THREADS[case]}"] if case in THREADS else []
    if args.limit:
        extra.append(f"trainer.limit_train_batches={args.limit}")
    command = [
        sys.executable, "-m", "dlrun", f"model={args.model}", *CASES[case], *data, *extra,
        f"trainer.epochs={args.epochs}", f"trainer.batch_size={args.batch_size}",
        "trainer.progress=false", "plots=false", "trainer.eval_batch_size=1024",
        f"hydra.run.dir={out}",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"{case} failed:\n{proc.stderr[-2000:]}")
    rows = list(csv.DictReader((out / "history.csv").open()))
    metrics = json.loads((out / "metrics.json").read_text())
    later = [float(r["seconds"]) for r in rows[1:]] or [float(rows[0]["seconds"])]
    threads = metrics["threads"]
    return {
        "epoch": statistics.median(later),
        "first": float(rows[0]["seconds"]),
        "startup": float(metrics.get("startup_seconds") or 0.0),
        "threads": threads.get("torch"),
        "switches": threads.get("tuning", {}).get("switches", 0),  # the tuner's changes
        "accuracy": metrics["test"]["accuracy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--limit", type=int, default=0, help="trainer.limit_train_batches")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--cases", nargs="+", default=["idx", "folder", "streamed"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_data(root, args.images)
        results: dict[str, list[dict[str, float]]] = {c: [] for c in args.cases}
        for r in range(args.repeats):
            for case in args.cases:
                results[case].append(run_case(case, root, args, root / f"run_{case}_{r}"))
    med = {c: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for c, rs in results.items()}
    spread = {
        c: (min(x["epoch"] for x in rs), max(x["epoch"] for x in rs)) for c, rs in results.items()
    }
    best = min(m["epoch"] for m in med.values())
    base = med.get("idx", {}).get("epoch")
    print(f"{args.model}, {args.images} images, batch {args.batch_size}, {args.epochs} epochs, "
          f"{os.cpu_count()} CPUs, median of {args.repeats}")  # fmt: skip
    print(f"{'case':10} {'epoch s':>8} {'min-max':>11} {'first s':>8} {'startup s':>9} "
          f"{'threads':>7} {'switches':>8} {'vs idx':>7} {'vs best':>7} "
          f"{'accuracy':>8}")  # fmt: skip
    for case, m in med.items():
        ratio = f"{m['epoch'] / base:.2f}" if base else "-"
        low, high = spread[case]
        print(f"{case:10} {m['epoch']:8.3f} {low:5.2f}-{high:5.2f} {m['first']:8.3f} "
              f"{m['startup']:9.2f} {m['threads']:7} {m['switches']:8} {ratio:>7} "
              f"{m['epoch'] / best:7.3f} {m['accuracy']:8.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
