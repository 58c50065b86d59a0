"""Per-step cost of dlrun's training loop against the minimal hand-written loop, in one process.

    python benchmarks/step_overhead.py                      # MLP on digits, SGD, batch 64, 1 thread
    python benchmarks/step_overhead.py --threads 2 --rounds 300 optimizer=adam

Both loops train the same model with the same optimizer object on the same training tensors,
with the same torch thread count (trainer.threads, so dlrun's thread tuner stays off):
  dlrun     FitLoop.train_one_epoch of a real run built from the config (what `dlrun` calls every
            epoch: its batches, task step, finiteness check, running sums and step loggers)
  minimal   benchmarks/compare.py's minimal loop (b): randperm, x[idx], zero_grad, step
An epoch of each in turn, round after round, so a slow spell of this shared machine hits both
alike; the ratio is taken per round, then its median. Start-up, validation and checkpoints are in
neither figure (compare.py measures those). Prints figures; asserts nothing. Goal (issue 14):
dlrun's steps per second >= 0.95x the minimal loop's.

Extra arguments are config overrides (model=..., optimizer=..., optimizer.fused=false, ...); the
minimal loop uses cross-entropy, so classification models only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.compare import LR, MOMENTUM, minimal_epoch  # noqa: E402

DEFAULTS = [
    "model=mlp",
    "data=digits",
    "optimizer=sgd",
    f"optimizer.lr={LR}",
    f"optimizer.momentum={MOMENTUM}",
    "trainer.batch_size=64",
    "plots=false",
    "trainer.progress=false",
]


def build_run(overrides: list[str], threads: int, folder: Path):
    """A real dlrun training run (config composed as the command would), not started."""
    from hydra import compose, initialize_config_dir

    from dlrun.artifacts import RunArtifacts
    from dlrun.cli import config_dir
    from dlrun.run import Run

    # another optimizer= takes its own defaults, not SGD's momentum
    own_optimizer = any(o.startswith("optimizer=") for o in overrides)
    defaults = [d for d in DEFAULTS if not (own_optimizer and d.startswith("optimizer"))]
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("config", [*defaults, f"trainer.threads={threads}", *overrides])
    return Run(cfg, RunArtifacts(folder))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="torch threads for both loops")
    p.add_argument("--rounds", type=int, default=200, help="epochs of each loop, interleaved")
    p.add_argument("--warmup", type=int, default=5, help="rounds left out of the figures")
    args, overrides = p.parse_known_args()

    from dlrun.data.bundle import num_batches
    from dlrun.loop import LoopState, samples_per_epoch
    from dlrun.runtime import StopFlag

    with tempfile.TemporaryDirectory() as tmp:
        run = build_run(overrides, args.threads, Path(tmp))
        loop, state = run.fit_loop(StopFlag()), LoopState()
        net, opt = run.task.model, run.opt.optimizers["model"]
        x, y = run.data.train.tensors["x"], run.data.train.tensors["y"]
        batch = run.settings.batch_size
        steps = num_batches(samples_per_epoch(len(x), batch, run.settings.drop_last), batch)
        if steps != num_batches(len(x), batch):
            raise SystemExit("dlrun's epoch drops a last batch of one: choose another batch size")
        dlrun_s, minimal_s = [], []
        for _ in range(args.warmup + args.rounds):
            start = time.perf_counter()
            loop.train_one_epoch(state)
            state.epoch += 1
            middle = time.perf_counter()
            minimal_epoch(net, opt, x, y, batch)
            dlrun_s.append(middle - start)
            minimal_s.append(time.perf_counter() - middle)
        run.data.close()

    d, m = dlrun_s[args.warmup :], minimal_s[args.warmup :]
    ratios = sorted(b / a for a, b in zip(d, m, strict=True))  # > 1: dlrun's step is faster
    q = statistics.quantiles(ratios, n=4)
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), {args.rounds} rounds of "
        f"{steps} steps, batch {batch}, {type(opt).__name__} "
        f"(fused={opt.defaults.get('fused')}), {' '.join(overrides) or 'MLP on digits'}"
    )
    for name, times in (("dlrun loop", d), ("minimal loop", m)):
        per_step = [t / steps * 1e6 for t in times]
        print(
            f"  {name:<14} {statistics.median(per_step):8.1f} us/step  "
            f"(p10 {statistics.quantiles(per_step, n=10)[0]:.1f})"
        )
    print(
        f"  dlrun speed / minimal = {statistics.median(ratios):.3f} "
        f"(quartiles {q[0]:.3f}-{q[2]:.3f})   (goal >= 0.95)"
    )


if __name__ == "__main__":
    main()
