"""Pruned against unpruned Optuna search, in one go: the default search space
(`hparams_search=optuna`: MLP on digits, lr, weight decay, batch size, hidden sizes), 20 trials of
30 epochs each, with the default pruner (median) and with `hydra.sweeper.pruner=none`, both with
the same sampler seed.

    python benchmarks/search_pruning.py                   # 20 trials x 30 epochs, seed 0
    python benchmarks/search_pruning.py --trials 10 --epochs 10 --seed 1

Each search is one `dlrun -m` process with one torch thread. Prints, per search: the epochs all its
trials trained (from their metrics.json), trials completed/pruned, the best validation accuracy
and the wall time; then the ratios the goal is about (issue 27: pruned epochs <= 0.5x unpruned,
best accuracy within 0.5 points). Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def search(folder: Path, trials: int, epochs: int, seed: int, pruner: str) -> dict:
    """One `dlrun -m hparams_search=optuna` into `folder`; what its trials' records say."""
    command = [
        sys.executable, "-m", "dlrun", "-m", "hparams_search=optuna",
        f"hydra.sweep.dir={folder}", f"hydra.sweeper.n_trials={trials}",
        f"hydra.sweeper.sampler.seed={seed}", f"hydra.sweeper.pruner={pruner}",
        f"trainer.epochs={epochs}", "trainer.progress=false", "plots=false",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    started = time.perf_counter()
    subprocess.run(command, cwd=folder.parent, env=env, check=True, capture_output=True)
    seconds = time.perf_counter() - started
    records = [json.loads(p.read_text()) for p in folder.glob("*/metrics.json")]
    best = [r["best_val"]["accuracy"] for r in records if r["status"] == "completed"]
    return {
        "epochs": sum(r.get("epochs_run") or 0 for r in records),
        "completed": sum(r["status"] == "completed" for r in records),
        "pruned": sum(r["status"] == "pruned" for r in records),
        "best_val_accuracy": max(best) if best else float("nan"),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pruner in ("median", "none"):
            run = (args.trials, args.epochs, args.seed, pruner)
            results[pruner] = search(Path(tmp) / pruner, *run)
            print(f"pruner={pruner:6s} {json.dumps(results[pruner])}", flush=True)
    pruned, full = results["median"], results["none"]
    print(
        f"{args.trials} trials x {args.epochs} epochs, sampler seed {args.seed}: "
        f"epochs {pruned['epochs']} vs {full['epochs']} "
        f"({pruned['epochs'] / full['epochs']:.2f}x, goal <= 0.50x); "
        f"best val accuracy {100 * pruned['best_val_accuracy']:.2f} vs "
        f"{100 * full['best_val_accuracy']:.2f} "
        f"({100 * (pruned['best_val_accuracy'] - full['best_val_accuracy']):+.2f} points, "
        f"goal >= -0.50); wall {pruned['seconds']:.0f} s vs {full['seconds']:.0f} s"
    )


if __name__ == "__main__":
    main()
