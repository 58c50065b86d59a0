"""Tables at real scale, against pandas and scikit-learn on the same files, in one run:

    OMP_NUM_THREADS=1 python benchmarks/tables_vs_sklearn.py [--rows 200000] [--repeats 3]
        [--skip-load] [--skip-accuracy] [--seeds 0]

1. load + preprocess: a seeded 200,000 x 22 CSV (16 float columns, a whole-number column,
   4 text columns of 3 to 200 levels, a 0/1 target) read and encoded by dlrun's `csv_table`
   (pyarrow, scikit-learn fitted on the training split, the encoded float32 splits) against
   `pandas.read_csv` + a ColumnTransformer(StandardScaler, OneHotEncoder).fit_transform on the
   same file; the two alternate in one process (first call of each not counted), medians.
2. 50,000 columns x 20 rows: dlrun's `csv_table` seconds.
3. peak memory: each loader in its own process; the growth of peak RSS over the process's
   after-import RSS, against the float32 feature matrix plus the pandas frame (goal <= 2x).
4. accuracy: every default model (mlp, linear, perceptron) trained by `dlrun.train` with no
   option typed on each of scikit-learn's bundled tables (iris, wine, breast_cancer, digits;
   diabetes for regression) written as CSV, against LogisticRegression / Ridge (standardised
   features) fitted on dlrun's own non-test rows and scored on its test rows.
Not a timed test: figures depend on the machine (see docs/performance.md).
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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TABLES = {
    "iris": "classification",
    "wine": "classification",
    "breast_cancer": "classification",
    "digits": "classification",
    "diabetes": "regression",
}
MODELS = ("mlp", "linear", "perceptron")


# --- the files ---------------------------------------------------------------------------------
def write_big_csv(path: Path, rows: int) -> None:
    import pandas as pd

    rng = np.random.default_rng(0)
    cols = {f"num{i}": rng.normal(i, 1 + i, rows).round(4) for i in range(16)}
    cols["count"] = rng.integers(0, 1000, rows)
    for i, levels in enumerate([3, 10, 30, 200]):
        names = np.array([f"level{j}" for j in range(levels)])
        cols[f"cat{i}"] = names[rng.integers(0, levels, rows)]
    cols["target"] = (cols["num0"] + rng.normal(0, 1, rows) > 0).astype(int)
    pd.DataFrame(cols).to_csv(path, index=False)


def write_wide_csv(path: Path, columns: int = 50_000, rows: int = 20) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, columns)).round(3)
    header = ",".join([f"f{i}" for i in range(columns)] + ["target"])
    lines = [",".join(map(str, r)) + f",{i % 2}" for i, r in enumerate(x.tolist())]
    path.write_text(header + "\n" + "\n".join(lines) + "\n")


def write_bundled_csv(name: str, folder: Path) -> Path:
    from sklearn import datasets

    data = getattr(datasets, f"load_{name}")(as_frame=True)
    path = folder / f"{name}.csv"
    data.frame.to_csv(path, index=False)
    return path


# --- the loaders -------------------------------------------------------------------------------
def dlrun_load(path: Path) -> object:
    from dlrun.data.tabular import csv_table

    return csv_table(str(path), "target", "auto", 0.2, 0, 0.1, 0)


def sklearn_load(path: Path) -> tuple[object, object]:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = pd.read_csv(path)
    x = frame.drop(columns="target")
    numeric = [c for c in x if x[c].dtype.kind in "fi"]
    text = [c for c in x if c not in numeric]
    encode = ColumnTransformer(
        [("n", StandardScaler(), numeric), ("c", OneHotEncoder(handle_unknown="ignore"), text)]
    )
    return frame, encode.fit_transform(x)


def _warm_imports() -> None:
    import pandas  # noqa: F401
    import pyarrow.csv  # noqa: F401
    import sklearn.compose  # noqa: F401
    import sklearn.impute  # noqa: F401
    import sklearn.preprocessing  # noqa: F401
    import torch  # noqa: F401


def time_load(path: Path, repeats: int) -> dict[str, float]:
    _warm_imports()
    dlrun_load(path), sklearn_load(path)  # first calls: lazy imports inside both
    times: dict[str, list[float]] = {"dlrun": [], "pandas+sklearn": []}
    for _ in range(repeats):
        for name, load in (("dlrun", dlrun_load), ("pandas+sklearn", sklearn_load)):
            start = time.perf_counter()
            load(path)
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def _rss(field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process, in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_child(which: str, path: str) -> None:
    """In a fresh process: the peak RSS a loader adds over the RSS after the imports (the peak
    is reset first: importing torch peaks higher than it settles), and the baseline's sizes."""
    _warm_imports()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _rss("VmRSS")
    if which == "dlrun":
        bundle = dlrun_load(Path(path))
        sizes = {"width": bundle.input_shape[0]}
    else:
        frame, matrix = sklearn_load(Path(path))
        sizes = {"frame": int(frame.memory_usage(deep=True).sum()), "rows": len(frame)}
    print(json.dumps({"grown": _rss("VmHWM") - before, **sizes}))


def peak_memory(path: Path) -> dict[str, float]:
    def child(which: str) -> dict:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        cmd = [sys.executable, __file__, "--peak-child", which, str(path)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    ours, theirs = child("dlrun"), child("sklearn")
    floor = ours["width"] * theirs["rows"] * 4 + theirs["frame"]  # float32 matrix + frame
    return {"dlrun_mb": ours["grown"] / 2**20, "floor_mb": floor / 2**20}


# --- accuracy ----------------------------------------------------------------------------------
def run_dlrun(path: Path, model: str, folder: Path, seed: int) -> dict:
    import dlrun

    run_dir = folder / f"run-{path.stem}-{model}-{seed}"
    result = dlrun.train(
        [
            "data=csv",
            f"data.path={path}",
            "data.target=target",
            f"model={model}",
            f"seed={seed}",
            "trainer.progress=false",
            "plots=false",
            f"hydra.run.dir={run_dir}",
        ]
    )
    return {**result.test, "epochs": result.record.get("epochs_run")}


def sklearn_scores(path: Path, task: str) -> dict[str, float]:
    import pandas as pd
    import torch
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from dlrun.data.split import holdout

    frame = pd.read_csv(path)
    x, y = frame.drop(columns="target").to_numpy(), frame["target"].to_numpy()
    labels = torch.as_tensor(y).long() if task == "classification" else None
    train, test = (i.numpy() for i in holdout(len(y), 0.2, 0, labels))
    if task == "regression":
        model = make_pipeline(StandardScaler(), Ridge()).fit(x[train], y[train])
        return {"r2": r2_score(y[test], model.predict(x[test]))}
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    return {"accuracy": accuracy_score(y[test], model.fit(x[train], y[train]).predict(x[test]))}


def accuracy_table(seeds: list[int]) -> list[str]:
    lines = [
        "| table | metric | sklearn | " + " | ".join(f"dlrun {m}" for m in MODELS) + " |",
        "|---|---|---|" + "---|" * len(MODELS),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name, task in TABLES.items():
            path = write_bundled_csv(name, Path(tmp))
            theirs = sklearn_scores(path, task)
            metric, value = next(iter(theirs.items()))
            baseline = "Ridge" if task == "regression" else "LogisticRegression"
            cells = []
            for model in MODELS:
                runs = [run_dlrun(path, model, Path(tmp), s) for s in seeds]
                mine = np.array([r[metric] for r in runs])
                epochs = "/".join(str(r["epochs"]) for r in runs)
                shown = f"{mine.mean():.3f}" + (
                    f" ± {mine.std(ddof=1):.3f}" if len(mine) > 1 else ""
                )
                cells.append(f"{shown} ({mine.mean() - value:+.3f}; {epochs} ep)")
            lines.append(
                f"| {name} | {metric} | {value:.3f} ({baseline}) | " + " | ".join(cells) + " |"
            )
            print(lines[-1], flush=True)
    return lines


def main() -> None:
    if sys.argv[1:2] == ["--peak-child"]:
        return peak_child(sys.argv[2], sys.argv[3])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    if not args.skip_load:
        with tempfile.TemporaryDirectory() as tmp:
            big, wide = Path(tmp) / "big.csv", Path(tmp) / "wide.csv"
            write_big_csv(big, args.rows)
            print(f"{args.rows:,} x 22 CSV: {big.stat().st_size / 1e6:.1f} MB")
            t = time_load(big, args.repeats)
            ratio = t["dlrun"] / t["pandas+sklearn"]
            print(
                f"load + preprocess: dlrun {t['dlrun']:.2f} s, pandas.read_csv + sklearn "
                f"fit_transform {t['pandas+sklearn']:.2f} s: ratio {ratio:.2f}x (goal <= 3x)"
            )
            m = peak_memory(big)
            print(
                f"peak memory: dlrun +{m['dlrun_mb']:.0f} MB against float32 matrix + pandas "
                f"frame {m['floor_mb']:.0f} MB: {m['dlrun_mb'] / m['floor_mb']:.2f}x (goal <= 2x)"
            )
            write_wide_csv(wide)
            start = time.perf_counter()
            dlrun_load(wide)
            print(f"50,000 columns x 20 rows: dlrun {time.perf_counter() - start:.2f} s")
    if not args.skip_accuracy:
        print("\n".join(accuracy_table(args.seeds)))


if __name__ == "__main__":
    main()
