"""dlrun against what users would write themselves, on the same data, model, batch and epochs.

    python benchmarks/compare.py                            # all cases, 2 epochs, auto device
    python benchmarks/compare.py --cases lenet_mnist --epochs 3 --repeats 3
    pip install -e ".[bench]"                               # Lightning, for runner (c)

Runners, each in its own fresh process (so wall time includes start-up and peak memory is its own):
  (a) seed       the seeds' loop: torchvision datasets with per-sample ToTensor/Normalize and a
                 DataLoader (2 workers) for images; a DataLoader over a TensorDataset for tables
  (b) minimal    a hand-written loop over pre-normalised tensors on the device, sliced by a
                 permuted index (the fastest plain PyTorch a user would write)
  (c) lightning  PyTorch Lightning's Trainer over a DataLoader of the same in-memory tensors
  (d) dlrun      the real `dlrun` command; samples/s from its metrics.json
Every runner trains the same model with SGD (lr 0.01, momentum 0.5: the seeds' recipe) and times
training epochs only (no validation); (d)'s wall time also includes its per-epoch validation.

Cases: mlp_digits (sklearn digits, batch 64), lenet_mnist (MNIST idx files of sklearn's real
digits upscaled to 28x28 - real MNIST cannot be downloaded here; batch 32), resnet18_cifar
(CIFAR-10 pickle batches of synthetic 32x32 images, batch 128). Prints figures and ratios;
asserts nothing. Goals (issue 8): d/b >= 0.95, d/c >= 1.2, d/a >= 2.3.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

LR, MOMENTUM = 0.01, 0.5
RUNNERS = ("seed", "minimal", "lightning", "dlrun")
CASES = {
    "mlp_digits": {"batch": 64, "dlrun": ["model=mlp", "data=digits"]},
    "lenet_mnist": {"batch": 32, "dlrun": ["model=lenet", "data=mnist"]},
    "resnet18_cifar": {
        "batch": 128,
        "dlrun": ["model=resnet18", "data=cifar10", "data.augment=none"],
    },
    # experiment=cifar10_speed's net, bf16 and channels-last; its schedule, smoothing and
    # augmentation off, so every runner does the same work
    "resnet9_cifar": {
        "batch": 512,
        "bf16": True,
        "dlrun": [
            "experiment=cifar10_speed",
            "data.augment=none",
            "scheduler=none",
            "loss.label_smoothing=0.0",
            "optimizer.nesterov=false",
            "optimizer.weight_decay=0",
        ],
    },
}
# The real `dlrun` command (tests.proc runs its entry point) with the MD5 check off: the
# CIFAR-format stand-in cannot match the official sums, and no environment variable turns it off.
DLRUN = ["-m", "tests.proc", "--test-no-checksums"]


# --- data and models, identical for every runner ---------------------------------------------
def prepare(case: str, root: Path, n_cifar: int) -> None:
    """Write the case's files in their real on-disk format (once, before any runner)."""
    if case == "lenet_mnist":
        from benchmarks.lenet_mnist import stand_in_digits
        from tests.datasets import write_mnist

        images, labels = stand_in_digits()
        write_mnist(root, images=images, labels=labels)
    elif case in ("resnet18_cifar", "resnet9_cifar"):
        from tests.datasets import write_cifar

        write_cifar(root, n_train=n_cifar, n_test=256)


def _bf16_autocast(device: torch.device, enabled: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def _autocast(case: str, device: torch.device):
    """bf16 autocast where the case's dlrun recipe uses it (resnet9_cifar), else nothing."""
    return _bf16_autocast(device, CASES[case].get("bf16", False))


def _vision_set(case: str, root: Path, transform=None):
    from torchvision import datasets

    if case == "lenet_mnist":
        return datasets.MNIST(str(root), train=True, transform=transform)

    from dlrun.data.vision import _without_md5  # synthetic files: no official MD5s to match

    StandInCIFAR10 = _without_md5(datasets.CIFAR10)
    return StandInCIFAR10(str(root), train=True, transform=transform)


def _stats(case: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    from dlrun.data.vision import SETS  # the dataset's known mean/std, as dlrun uses

    spec = SETS["mnist" if case == "lenet_mnist" else "cifar10"]
    return tuple(spec.mean), tuple(spec.std)


def tensors(case: str, root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Pre-normalised training tensors (what runners b and c train on)."""
    if case == "mlp_digits":
        from dlrun.data.tabular import digits

        train = digits(test_fraction=0.2, split_seed=0, val_fraction=0.1, seed=0).train
        return train.tensors["x"], train.tensors["y"]
    ds = _vision_set(case, root)
    x = torch.as_tensor(ds.data).float() / 255
    x = x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2)
    mean, std = _stats(case)
    x = (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    return x.contiguous(), torch.as_tensor(ds.targets)


def model(case: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if case == "mlp_digits":
        from dlrun.models.mlp import MLP

        return MLP(64, 10, hidden=[128], activation="relu", dropout=0.1)
    from dlrun.models import vision

    if case == "lenet_mnist":
        return vision.LeNet((1, 28, 28), 10)
    if case == "resnet9_cifar":
        from dlrun.models.speed import ResNet9

        return ResNet9(3, 10).to(memory_format=torch.channels_last)
    return vision.resnet18(in_channels=3, num_classes=10, image_size=32)


# --- the runners (each runs in its own process) ---------------------------------------------
def _sgd(net: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)


def run_seed(case: str, root: Path, epochs: int, device: torch.device) -> float:
    from torch.utils.data import DataLoader, TensorDataset

    if case == "mlp_digits":
        loader = DataLoader(
            TensorDataset(*tensors(case, root)), batch_size=CASES[case]["batch"], shuffle=True
        )
    else:
        from torchvision import transforms

        mean, std = _stats(case)
        tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
        loader = DataLoader(
            _vision_set(case, root, tf),
            batch_size=CASES[case]["batch"],
            shuffle=True,
            num_workers=2,
            pin_memory=device.type == "cuda",
        )
    net = model(case).to(device)
    opt, seconds, samples = _sgd(net), 0.0, 0
    for _ in range(epochs):
        start = time.perf_counter()
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            opt.zero_grad()
            with _autocast(case, device):
                loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            samples += len(y)
        _sync(device)
        seconds += time.perf_counter() - start
    return samples / seconds


def minimal_epoch(
    net: torch.nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    batch: int,
    bf16: bool = False,
) -> int:
    """One epoch of the minimal loop (b) over tensors on the device; returns the samples seen.
    benchmarks/step_overhead.py runs it against dlrun's loop in one process."""
    perm = torch.randperm(len(x), device=x.device)
    for i in range(0, len(x), batch):
        idx = perm[i : i + batch]
        opt.zero_grad()
        with _bf16_autocast(x.device, bf16):
            loss = F.cross_entropy(net(x[idx]), y[idx])
        loss.backward()
        opt.step()
    return len(x)


def run_minimal(case: str, root: Path, epochs: int, device: torch.device) -> float:
    x, y = (t.to(device) for t in tensors(case, root))
    net, batch = model(case).to(device), CASES[case]["batch"]
    opt, seconds, samples = _sgd(net), 0.0, 0
    for _ in range(epochs):
        start = time.perf_counter()
        samples += minimal_epoch(net, opt, x, y, batch, CASES[case].get("bf16", False))
        _sync(device)
        seconds += time.perf_counter() - start
    return samples / seconds


def run_lightning(case: str, root: Path, epochs: int, device: torch.device) -> float:
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = model(case)

        def training_step(self, batch, _):
            x, y = batch
            with _autocast(case, device):
                return F.cross_entropy(self.net(x), y)

        def configure_optimizers(self):
            return _sgd(self.net)

    class Clock(L.Callback):
        seconds = 0.0

        def on_train_epoch_start(self, *_):
            self.start = time.perf_counter()

        def on_train_epoch_end(self, *_):
            _sync(device)
            Clock.seconds += time.perf_counter() - self.start

    data = TensorDataset(*tensors(case, root))
    loader = DataLoader(data, batch_size=CASES[case]["batch"], shuffle=True)
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Clock()],
    )
    trainer.fit(Module(), loader)
    return len(data) * epochs / Clock.seconds


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def child(args: argparse.Namespace) -> None:
    """One runner in this process; prints one JSON line."""
    device = torch.device(
        args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    importlib.import_module(
        "torch._dynamo"
    )  # torch.optim imports it on its first step: off the clock

    runner = {"seed": run_seed, "minimal": run_minimal, "lightning": run_lightning}[args.runner]
    rate = runner(args.case, Path(args.root), args.epochs, device)
    peak = {"host_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        peak["cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps({"samples_per_s": rate, **peak}))


# --- the parent: one fresh process per runner, interleaved repeats ------------------------------
def launch(
    runner: str, case: str, root: Path, work: Path, args: argparse.Namespace, repeat: int
) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    if runner == "dlrun":
        out = work / f"{case}-{repeat}"
        cmd = [
            sys.executable,
            *DLRUN,
            *CASES[case]["dlrun"],
            f"data.root={root}",
            "data.download=false",
            f"trainer.batch_size={CASES[case]['batch']}",
            f"trainer.epochs={args.epochs}",
            "optimizer=sgd",
            f"optimizer.lr={LR}",
            f"optimizer.momentum={MOMENTUM}",
            f"device={args.device}",
            "plots=false",
            "trainer.progress=false",
            f"hydra.run.dir={out}",
        ]
        if case == "mlp_digits":
            cmd.remove(f"data.root={root}")
            cmd.remove("data.download=false")
    else:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            "--runner",
            runner,
            "--case",
            case,
            "--root",
            str(root),
            "--epochs",
            str(args.epochs),
            "--device",
            args.device,
        ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=work)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    if runner == "dlrun":
        m = json.loads((out / "metrics.json").read_text())
        peak = m["peak_memory_mb"]
        return {
            "samples_per_s": m["samples_per_second"],
            "host_mb": peak["host_rss"],
            "cuda_mb": peak.get("cuda"),
            "wall_s": wall,
        }
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "wall_s": wall}


def report(case: str, results: dict[str, list[dict]]) -> None:
    def med(runner: str, key: str) -> float | None:
        values = [r[key] for r in results[runner] if r.get(key) is not None]
        return statistics.median(values) if values else None

    print(f"\n{case} (batch {CASES[case]['batch']}; median of {len(results['dlrun'])} repeat(s))")
    print(f"  {'runner':<22}{'samples/s':>12}{'wall s':>9}{'host MB':>9}{'cuda MB':>9}")
    for runner, label in zip(
        RUNNERS, ["(a) seed loop", "(b) minimal loop", "(c) Lightning", "(d) dlrun"], strict=True
    ):
        errors = [r["error"] for r in results[runner] if "error" in r]
        if errors:
            print(f"  {label:<22}  failed: {errors[0]}")
            continue
        cuda = med(runner, "cuda_mb")
        print(
            f"  {label:<22}{med(runner, 'samples_per_s'):>12,.0f}{med(runner, 'wall_s'):>9.1f}"
            f"{med(runner, 'host_mb'):>9,.0f}{'-' if cuda is None else f'{cuda:,.0f}':>9}"
        )
    # Ratios per repeat (the four runners of a repeat run back to back, so a slow spell of the
    # machine hits them alike), then their median and range over the repeats.
    for other, name, goal in (
        ("seed", "d/a", 2.3),
        ("minimal", "d/b", 0.95),
        ("lightning", "d/c", 1.2),
    ):
        ratios = [
            d["samples_per_s"] / o["samples_per_s"]
            for d, o in zip(results["dlrun"], results[other], strict=True)
            if d.get("samples_per_s") and o.get("samples_per_s")
        ]
        if ratios:
            spread = f" (range {min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
            print(f"  {name} = {statistics.median(ratios):5.2f}{spread}   (goal >= {goal})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {list(CASES)}")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument(
        "--repeats", type=int, default=1, help="interleaved repeats; the median is shown"
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument(
        "--cifar-images",
        type=int,
        default=1024,
        help="training images of the CIFAR-format stand-in",
    )
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--runner", help=argparse.SUPPRESS)
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--root", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    print(
        f"torch {torch.__version__}, device {args.device}, "
        f"cuda available {torch.cuda.is_available()}, "
        f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, epochs {args.epochs}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root, work = Path(tmp) / "data", Path(tmp)
        for case in args.cases.split(","):
            prepare(case, root, args.cifar_images)
            results: dict[str, list[dict]] = {r: [] for r in RUNNERS}
            for repeat in range(
                args.repeats
            ):  # interleaved, so machine load hits every runner alike
                for runner in RUNNERS:
                    results[runner].append(launch(runner, case, root, work, args, repeat))
            if os.environ.get("DLRUN_BENCH_DEBUG"):
                print(json.dumps(results, indent=1))
            report(case, results)


if __name__ == "__main__":
    main()
