"""Real tables through the real command: task detection, target units, the saved preprocessing."""

import statistics

import pytest
import torch

from dlrun.data.table_prep import TablePreprocessing
from tests.conftest import read_metrics, run_dirs
from tests.unit.test_table_prep import house_rows, write_csv

SHORT = ("trainer.progress=false", "plots=false")


def test_regression_table_trains_scaled_and_reports_in_the_targets_units(dlrun, tmp_path):
    write_csv(tmp_path / "h.csv", ["area", "city", "price"], house_rows(400, 0))
    # 15 epochs were sized for 288 training rows (a tenth validates; auto gives 320 rows a fifth)
    fixed = ("trainer.epochs=15", "data.val_fraction=0.1")
    proc = dlrun("data=csv", "data.path=h.csv", "data.target=price", *fixed, *SHORT)
    assert "target 'price' read as regression" in proc.stdout
    (run,) = run_dirs(tmp_path)
    m = read_metrics(run)
    # prices spread ~550 around ~5,500 with noise 40: a model that learned them, in price units
    assert m["task"] == "regression" and m["test"]["r2"] > 0.9, m["test"]
    assert 15 < m["test"]["mae"] < 200 and 15 < m["test"]["rmse"] < 250, m["test"]
    state = torch.load(run / "checkpoints" / "best.pt", weights_only=True)["data_state"]["table"]
    prep = TablePreprocessing.from_state(state)
    assert (
        prep.categories == {"city": ["bergen", "oslo", "tromso"]}
        and 5000 < prep.target_mean[0] < 6000
    )
    # eval from the checkpoint encodes with the saved statistics: the same test scores
    dlrun("mode=eval", f"ckpt={run}", "hydra.run.dir=eval_run")
    assert read_metrics(tmp_path / "eval_run")["test"]["r2"] == m["test"]["r2"]


def _house_run(dlrun, tmp_path, *extra):
    write_csv(tmp_path / "h.csv", ["area", "city", "price"], house_rows(300, 0))
    dlrun("data=csv", "data.path=h.csv", "data.target=price", "trainer.epochs=5", *SHORT, *extra)
    return run_dirs(tmp_path)[-1]


def test_eval_runs_from_another_folder_and_a_typed_data_path_wins(dlrun, tmp_path):
    import pandas as pd

    from tests.conftest import run_dlrun

    run = _house_run(dlrun, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # data.path was typed relative to tmp_path: the run recorded where it was
    proc = run_dlrun("mode=eval", f"ckpt={run}", "hydra.run.dir=e1", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert read_metrics(elsewhere / "e1")["test"]["r2"] == read_metrics(run)["test"]["r2"]
    # the same table as Parquet, typed on eval's command line: it is the one evaluated
    moved = pd.read_csv(tmp_path / "h.csv")
    moved["price"] = moved["price"] + 10_000  # a shifted target: a visibly worse score
    moved.to_parquet(elsewhere / "h.parquet")
    proc = run_dlrun(
        "mode=eval",
        f"ckpt={run}",
        "data=csv",
        f"data.path={elsewhere / 'h.parquet'}",
        "hydra.run.dir=e2",
        cwd=elsewhere,
    )
    assert proc.returncode == 0, proc.stderr
    assert read_metrics(elsewhere / "e2")["test"]["mae"] > 9000


def test_predict_takes_a_dataframe_and_parquet_and_scores_regression(dlrun, tmp_path):
    import numpy as np
    import pandas as pd

    import dlrun as api

    run = _house_run(dlrun, tmp_path)
    frame = pd.read_csv(tmp_path / "h.csv").iloc[:50]
    frame.to_parquet(tmp_path / "new.parquet")
    model = api.load(run, "cpu")
    from_frame = model.predict(frame[["city", "area"]]).values  # columns by name, any order
    from_csv = model.predict(tmp_path / "h.csv").values[:50]
    assert np.allclose(from_frame, from_csv, atol=1e-5)
    proc = dlrun("mode=predict", f"ckpt={run}", "input=new.parquet", "hydra.run.dir=p")
    predicted = pd.read_csv(tmp_path / "p" / "predictions.csv")
    assert np.allclose(predicted["predicted"], from_frame[:, 0], rtol=1e-4)
    m = read_metrics(tmp_path / "p")
    error = predicted["predicted"] - frame["price"]
    assert m["mae"] == pytest.approx(error.abs().mean(), rel=1e-3), m
    assert m["rmse"] == pytest.approx(float(np.sqrt((error**2).mean())), rel=1e-3), m
    assert (
        f"MAE {m['mae']:.4f}, RMSE {m['rmse']:.4f}, R^2 {m['r2']:.4f}" in proc.stdout + proc.stderr
    )


def test_data_cv_runs_the_folds_as_one_sweep_with_mean_and_std(dlrun, tmp_path, capsys):
    from dlrun.summary import main as summary_main

    write_csv(tmp_path / "h.csv", ["area", "city", "price"], house_rows(150, 0))
    dlrun("data=csv", "data.path=h.csv", "data.target=price", "data.cv=3", "trainer.epochs=2")
    runs = run_dirs(tmp_path)
    assert len(runs) == 3
    folds = sorted(o for r in runs for o in read_metrics(r)["overrides"] if "fold" in o)
    assert folds == ["data.fold=0", "data.fold=1", "data.fold=2"]
    sweep = runs[0].parent
    maes = [read_metrics(r)["test"]["mae"] for r in runs]
    mean, std = statistics.fmean(maes), statistics.stdev(maes)
    (sweep / "summary.md").unlink()
    summary_main([str(sweep)])  # dlrun-summary rebuilds it from the runs
    text = (sweep / "summary.md").read_text()
    assert "fold 0,fold 1,fold 2" in text and f"{mean:.4f} ± {std:.4f}" in text


def test_onnx_export_takes_raw_columns_and_matches_mode_predict(dlrun, tmp_path):
    import json

    import numpy as np
    import pandas as pd

    onnxruntime = pytest.importorskip("onnxruntime")
    rows = house_rows(300, 0)
    rows[3][0] = ""  # a gap: imputed with the training mean
    write_csv(tmp_path / "h.csv", ["area", "city", "price"], rows)
    dlrun(
        "data=csv",
        "data.path=h.csv",
        "data.target=price",
        "data.impute=mean",
        *SHORT,
        "trainer.epochs=5",
        "hydra.run.dir=run",
    )
    dlrun("mode=export", "ckpt=run", "hydra.run.dir=exp")
    new = pd.DataFrame(
        {"area": [70.5, np.nan, 95.0, 80.0], "city": ["oslo", "bergen", "paris", None]}
    )
    new.to_csv(tmp_path / "new.csv", index=False)
    dlrun("mode=predict", "ckpt=run", "input=new.csv", "hydra.run.dir=pred")
    expected = pd.read_csv(tmp_path / "pred" / "predictions.csv")["predicted"].to_numpy()
    codes = json.loads((tmp_path / "exp" / "categories.json").read_text())["city"]
    session = onnxruntime.InferenceSession(str(tmp_path / "exp" / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == ["area", "city"]  # the column names
    feed = {
        "area": new["area"].to_numpy(np.float32),  # NaN: the graph imputes it
        # an unseen level: any code outside the map; a gap: -1
        "city": np.array(
            [codes.get(c, len(codes)) if isinstance(c, str) else -1 for c in new["city"]]
        ),
    }
    got = session.run(None, feed)[0][:, 0]  # in the target's units, like mode=predict
    assert np.allclose(got, expected, rtol=1e-5), (got, expected)


def test_early_stopping_counts_a_tie_won_on_validation_loss_as_progress(dlrun, tmp_path):
    """Two well-separated classes: validation accuracy is 1.0 within a few epochs, while the
    validation loss keeps falling; patience counts from the last epoch that was best."""
    import numpy as np

    rng = np.random.default_rng(0)
    rows = [
        [f"{rng.normal(3 if i % 2 else -3, 1):.3f}", "yes" if i % 2 else "no"] for i in range(200)
    ]
    write_csv(tmp_path / "s.csv", ["x", "label"], rows)
    dlrun(
        "data=csv",
        "data.path=s.csv",
        "data.target=label",
        "model=linear",
        *SHORT,
        "trainer.epochs=60",
        "trainer.early_stopping.patience=3",
    )
    import csv

    run = run_dirs(tmp_path)[-1]
    with (run / "history.csv").open() as f:
        epochs = list(csv.DictReader(f))
    first_perfect = next(int(r["epoch"]) for r in epochs if float(r["val_accuracy"]) == 1.0)
    ran = read_metrics(run)["epochs_run"]
    assert ran > first_perfect + 3 + 10, (first_perfect, ran)
