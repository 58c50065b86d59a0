"""Seeing a run, end to end: plots/, the console report, TensorBoard events, MLflow, interrupts."""

import csv

import numpy as np
import pytest
from PIL import Image

from tests.conftest import read_metrics, run_dirs

SHORT = [
    "plots=true",
    "trainer.epochs=2",
    "trainer.limit_train_batches=3",
    "trainer.progress=false",
]


def assert_png_shows_something(path):
    assert path.is_file(), path
    with Image.open(path) as img:
        assert 400 <= img.width <= 4000 and 300 <= img.height <= 4000, (path, img.size)
        pixels = np.asarray(img.convert("L"), dtype=float)
    # A blank (single-colour) image has no variance; axes, text and curves give plenty.
    assert pixels.std() > 5, f"{path} looks blank (pixel std {pixels.std():.2f})"


def test_classification_run_plots_and_reports(dlrun, tmp_path):
    proc = dlrun(*SHORT, "trainer.log_every_n_steps=1")
    (run,) = run_dirs(tmp_path)
    for name in ["loss.png", "val_accuracy.png", "lr.png", "confusion_matrix.png"]:
        assert_png_shows_something(run / "plots" / name)
    out = proc.stdout
    assert "trainable /" in out and " MB; device cpu, precision 32" in out  # the model line
    table = out[out.index("run summary: test (best epoch") :]
    for row in ["accuracy", "f1_macro", "loss", "wall time", "samples/s", "run folder"]:
        assert f"\n  {row}" in table, row
    test_acc = read_metrics(run)["test"]["accuracy"]
    assert f"{test_acc:.4g}" in table.splitlines()[2]  # the accuracy row shows the test value
    # logger=csv (the default): one steps.csv row per logged batch, global batch numbers.
    rows = list(csv.DictReader((run / "steps.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert {"loss", "lr"} <= set(rows[0]) and all(float(r["loss"]) > 0 for r in rows)


def test_regression_run_plots_predicted_vs_true(dlrun, tmp_path):
    dlrun("model=linear", "data=regression", *SHORT)
    (run,) = run_dirs(tmp_path)
    names = sorted(p.name for p in (run / "plots").iterdir())
    assert names == ["loss.png", "lr.png", "predicted_vs_true.png", "val_loss.png"]
    for name in names:
        assert_png_shows_something(run / "plots" / name)


def test_tensorboard_event_file_holds_the_scalars(dlrun, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    dlrun(*SHORT, "logger=[csv,tensorboard]", "trainer.log_every_n_steps=2", "optimizer.lr=0.003")
    (run,) = run_dirs(tmp_path)
    assert list(run.glob("events.out.tfevents.*"))
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    tags = set(events.Tags()["scalars"])
    expected = {"step/loss", "step/lr", "train/loss", "val/loss", "val/accuracy", "lr"}
    assert expected | {"hparam/test_accuracy", "hparam/best_val_accuracy"} <= tags
    # one x-axis: the run's batches (3 an epoch); per-step values every 2 batches of the run
    # (intervals span epochs), per-epoch ones at each epoch's last batch, the epoch as a value
    assert [e.step for e in events.Scalars("step/loss")] == [2, 4, 6]
    assert [e.step for e in events.Scalars("train/loss")] == [3, 6]
    assert [(e.step, e.value) for e in events.Scalars("time/epoch")] == [(3, 1.0), (6, 2.0)]
    test_acc = read_metrics(run)["test"]["accuracy"]
    assert events.Scalars("hparam/test_accuracy")[-1].value == pytest.approx(test_acc, abs=1e-6)
    start = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(start).session_start_info.hparams
    assert hparams["optimizer.lr"].number_value == pytest.approx(0.003)
    # the run's choices (groups' options, overrides), not every key and _target_ of the config
    assert hparams["model"].string_value == "mlp" and hparams["optimizer"].string_value == "adam"
    assert not [k for k in hparams if "_target_" in k or k.startswith("trainer.eval")]
    assert (run / "steps.csv").is_file()  # the csv logger ran beside it


@pytest.mark.slow  # ~15 s; optional extra
def test_mlflow_logger_records_the_run(dlrun, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    dlrun(*SHORT, "logger=mlflow")
    (run,) = run_dirs(tmp_path)
    assert not (run / "steps.csv").exists()  # logger=mlflow replaced the default csv logger
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # to read the folder store back
    client = MlflowClient(tracking_uri=(tmp_path / "outputs" / "mlruns").as_uri())
    (found,) = client.search_runs([client.get_experiment_by_name("dlrun").experiment_id])
    assert found.info.status == "FINISHED" and found.info.run_name == str(
        run.relative_to(tmp_path / "outputs")
    )
    assert found.data.params["optimizer._target_"] == "torch.optim.Adam"
    test_acc = read_metrics(run)["test"]["accuracy"]
    assert found.data.metrics["test_accuracy"] == pytest.approx(test_acc)
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"plots", "history.csv"} <= artifacts


@pytest.mark.slow  # ~15 s: a real SIGINT mid-run
def test_interrupted_run_still_writes_plots(dlrun, tmp_path):
    # a real SIGINT to this process after epoch 2's validation (signals from outside: the
    # process tests of tests/faults/test_reliability.py)
    proc = dlrun(
        "plots=true",
        "trainer.epochs=100000",
        "trainer.progress=false",
        failpoints="sigint_after_validation:2",
        expect_fail=True,
    )
    assert proc.returncode == 130, proc.stderr
    (run,) = run_dirs(tmp_path)
    assert read_metrics(run)["status"] == "interrupted"
    for name in ["loss.png", "val_accuracy.png", "lr.png"]:
        assert_png_shows_something(run / "plots" / name)
    assert not (run / "plots" / "confusion_matrix.png").exists()  # no test pass was run
