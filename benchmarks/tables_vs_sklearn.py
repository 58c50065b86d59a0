"""dlrun's default MLP against sklearn's linear baselines on sklearn's bundled tables, as CSV.

    OMP_NUM_THREADS=1 python benchmarks/tables_vs_sklearn.py [--epochs 30] [--seeds 0]

Writes diabetes (regression), wine and breast-cancer (classification) to CSV in a temporary
folder, runs `dlrun data=csv data.path=<file> data.target=target` on each (a real process, the
defaults), and fits sklearn's Ridge / LogisticRegression (features standardised) on the very
same split: dlrun's test rows (data.test_fraction=0.2, data.split_seed=0, stratified for
classes) are recomputed with dlrun.data.split.holdout, and sklearn learns from all other rows
(dlrun's train + validation rows). Prints one table: test R2 (regression) or accuracy and
macro-F1 (classification). Not a timed test.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TABLES = {"diabetes": "regression", "wine": "classification", "breast_cancer": "classification"}


def write_csv(name: str, folder: Path) -> Path:
    from sklearn import datasets

    data = getattr(datasets, f"load_{name}")()
    path = folder / f"{name}.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*data.feature_names, "target"])
        writer.writerows([*row, target] for row, target in zip(data.data, data.target, strict=True))
    return path


def run_dlrun(path: Path, folder: Path, epochs: int, seed: int) -> dict:
    run_dir = folder / f"run-{path.stem}-{seed}"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "dlrun",
        "data=csv",
        f"data.path={path}",
        "data.target=target",
        f"trainer.epochs={epochs}",
        f"seed={seed}",
        "trainer.progress=false",
        "plots=false",
        f"hydra.run.dir={run_dir}",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=folder)
    if proc.returncode != 0:
        sys.exit(f"dlrun failed on {path.name}: {proc.stderr.strip()}")
    return json.loads((run_dir / "metrics.json").read_text())["test"]


def sklearn_scores(path: Path, task: str) -> dict[str, float]:
    import torch
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import accuracy_score, f1_score, r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from dlrun.data.split import holdout

    table = np.loadtxt(path, delimiter=",", skiprows=1)
    x, y = table[:, :-1], table[:, -1]
    labels = torch.as_tensor(y).long() if task == "classification" else None
    train, test = (i.numpy() for i in holdout(len(y), 0.2, 0, labels))
    if task == "regression":
        model = make_pipeline(StandardScaler(), Ridge()).fit(x[train], y[train])
        return {"r2": r2_score(y[test], model.predict(x[test]))}
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    pred = model.fit(x[train], y[train]).predict(x[test])
    return {
        "accuracy": accuracy_score(y[test], pred),
        "f1_macro": f1_score(y[test], pred, average="macro"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="dlrun trainer.epochs (default 30)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="dlrun seeds")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, task in TABLES.items():
            path = write_csv(name, Path(tmp))
            ours = [run_dlrun(path, Path(tmp), args.epochs, s) for s in args.seeds]
            theirs = sklearn_scores(path, task)
            for metric, value in theirs.items():
                mine = np.array([o[metric] for o in ours])
                shown = f"{mine.mean():.3f}" + (
                    f" ± {mine.std(ddof=1):.3f}" if len(mine) > 1 else ""
                )
                baseline = "Ridge" if task == "regression" else "LogisticRegression"
                rows.append((name, task, f"test {metric}", shown, f"{value:.3f} ({baseline})"))
    header = ("table", "task", "metric", f"dlrun mlp ({len(args.seeds)} seed(s))", "sklearn")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
