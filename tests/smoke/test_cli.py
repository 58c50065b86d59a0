"""The real `dlrun` command, end to end, in a subprocess: runs, files, multirun, reproducibility."""

import csv
import json
import sys

import numpy as np
import pytest

from tests.conftest import REPO, read_metrics, run_command, run_dirs

FAST = ["trainer.epochs=3", "trainer.progress=false"]


def test_default_run_writes_the_run_folder(dlrun, tmp_path):
    proc = dlrun(*FAST)
    (run,) = run_dirs(tmp_path)
    m = read_metrics(run)
    assert m["status"] == "completed" and m["task"] == "classification"
    assert m["epochs_run"] == 3 and 1 <= m["best_epoch"] <= 3
    assert set(m["test"]) >= {
        "accuracy",
        "f1_macro",
        "precision_macro",
        "recall_macro",
        "loss",
        "confusion_matrix",
    }
    assert (
        np.array(m["test"]["confusion_matrix"]).sum() == 359  # round(0.2 x 1,797) test rows
    )  # the whole 20% test split of 1,797 digits
    assert m["parameters"]["total"] > 0 and m["samples_per_second"] > 0 and m["device"] == "cpu"
    for name in [
        "checkpoints/best.pt",
        "checkpoints/last.pt",
        "history.csv",
        "dlrun.log",
        ".hydra/config.yaml",
        ".hydra/overrides.yaml",
    ]:
        assert (run / name).is_file(), name
    assert m["checkpoints"] == {"best": "checkpoints/best.pt", "last": "checkpoints/last.pt"}
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert {"train_loss", "val_accuracy", "val_loss", "lr", "seconds"} <= set(rows[0])
    assert "epoch 3/3" in proc.stdout and "test (best epoch" in proc.stdout
    assert "epoch 3/3" in (run / "dlrun.log").read_text()


@pytest.mark.slow
def test_default_command_reaches_095_on_digits(dlrun, tmp_path):
    dlrun()
    (run,) = run_dirs(tmp_path)
    assert read_metrics(run)["test"]["accuracy"] >= 0.95


def test_perceptron_on_synthetic_classification(dlrun, tmp_path):
    dlrun("model=perceptron", "data=classification", "optimizer=sgd", "optimizer.lr=0.1", *FAST)
    m = read_metrics(run_dirs(tmp_path)[0])
    assert m["test"]["accuracy"] > 0.7  # two balanced classes: chance is 0.5


def test_linear_regression_with_mse(dlrun, tmp_path):
    dlrun(
        "model=linear",
        "data=regression",
        "loss=mse",
        "trainer.epochs=20",
        "trainer.progress=false",
        "optimizer.lr=0.05",
    )
    m = read_metrics(run_dirs(tmp_path)[0])
    assert m["task"] == "regression" and m["monitor"] == {"metric": "loss", "mode": "min"}
    assert set(m["test"]) >= {"mae", "rmse", "r2", "loss"}
    assert m["test"]["r2"] > 0.9  # make_regression is linear: a linear model fits it


def _write_csv(path, rows, header):
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def test_user_csv_with_string_labels(dlrun, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    labels = np.where(x[:, 0] + x[:, 1] > 0, "cat", "dog")
    _write_csv(
        tmp_path / "table.csv",
        [[*r, lab] for r, lab in zip(x.round(4), labels, strict=True)],
        ["a", "b", "c", "animal"],
    )
    dlrun(
        "data=csv",
        "data.path=table.csv",
        "data.target=animal",
        "model=perceptron",
        "optimizer=sgd",
        "optimizer.lr=0.1",
        "trainer.epochs=10",
        "trainer.progress=false",
    )
    m = read_metrics(run_dirs(tmp_path)[0])
    assert m["test"]["accuracy"] > 0.85 and len(m["test"]["confusion_matrix"]) == 2


def test_user_csv_regression(dlrun, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 2))
    y = 3 * x[:, 0] - x[:, 1]
    _write_csv(
        tmp_path / "t.csv", [[*r, v] for r, v in zip(x, y, strict=True)], ["u", "v", "target"]
    )
    dlrun(
        "data=csv",
        "data.path=t.csv",
        "data.target=target",
        "data.task=regression",
        "model=linear",
        "trainer.epochs=15",
        "trainer.progress=false",
        "optimizer.lr=0.05",
    )
    m = read_metrics(run_dirs(tmp_path)[0])
    assert m["task"] == "regression" and m["test"]["r2"] > 0.95


def test_multirun_sweep_writes_one_folder_per_job(dlrun, tmp_path):
    dlrun(
        "-m",
        "optimizer=sgd,adam",
        "optimizer.lr=0.1,0.01",
        "trainer.epochs=1",
        "trainer.progress=false",
    )
    runs = run_dirs(tmp_path)
    assert len(runs) == 4 and len({r.parent for r in runs}) == 1  # one sweep folder
    assert runs[0].parent.parent.parent.name == "multirun"
    combos = {tuple(read_metrics(r)["overrides"]) for r in runs}
    assert len(combos) == 4 and all(read_metrics(r)["status"] == "completed" for r in runs)


def test_same_seed_gives_identical_metrics(dlrun, tmp_path):
    for _ in range(2):
        dlrun(*FAST, "seed=7")
    a, b = (read_metrics(r) for r in run_dirs(tmp_path))
    assert a["run_dir"] != b["run_dir"]
    assert (
        a["test"] == b["test"]
        and a["best_val"] == b["best_val"]
        and a["best_epoch"] == b["best_epoch"]
    )


def test_different_seed_changes_the_run(dlrun, tmp_path):
    dlrun(*FAST, "seed=1")
    dlrun(*FAST, "seed=2")
    a, b = (read_metrics(r) for r in run_dirs(tmp_path))
    assert a["best_val"] != b["best_val"]


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--cfg", "job"], ["model=perceptron", "--help"], ["model=timm", "--help"]],
)
def test_help_and_cfg_do_not_import_torch(tmp_path, argv):
    code = (
        f"import sys; sys.argv=['dlrun', *{argv!r}];\n"
        "from dlrun.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "for heavy in ('torch', 'torchvision', 'timm', 'pandas'):\n"
        "    assert heavy not in sys.modules, f'{heavy} was imported by --help'\n"
    )
    proc = run_command(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    for group in ["model:", "data:", "optimizer:", "loss:", "scheduler:", "device:"]:
        assert group in proc.stdout
    if "--help" in argv:
        assert "debug: overfit, smoke" in proc.stdout and "== Config ==" in proc.stdout
    if "model=perceptron" in argv:
        assert "dlrun.models.mlp.Perceptron" in proc.stdout


def test_overfit_debug_drives_the_loss_near_zero(dlrun, tmp_path):
    dlrun("debug=overfit", "trainer.epochs=150", "trainer.progress=false")
    rows = list(csv.DictReader((run_dirs(tmp_path)[0] / "history.csv").open()))
    assert float(rows[0]["train_loss"]) > 1.0 and float(rows[-1]["train_loss"]) < 0.05


def test_smoke_debug_is_one_short_epoch(dlrun, tmp_path):
    dlrun("debug=smoke")
    m = read_metrics(run_dirs(tmp_path)[0])
    assert m["epochs_run"] == 1 and m["status"] == "completed"


def test_config_dir_ships_inside_the_package_layout():
    # The wheel maps conf/ to dlrun/conf (pyproject force-include); the source tree keeps conf/.
    text = (REPO / "pyproject.toml").read_text()
    assert '"conf" = "dlrun/conf"' in text and (REPO / "conf" / "config.yaml").is_file()


def test_metrics_json_is_valid_json_with_schema_version(dlrun, tmp_path):
    dlrun("debug=smoke")
    data = json.loads((run_dirs(tmp_path)[0] / "metrics.json").read_text())
    assert data["schema_version"] == 1


def test_users_own_config_folder_adds_options(dlrun, tmp_path):
    (tmp_path / "myconf" / "model").mkdir(parents=True)
    (tmp_path / "myconf" / "model" / "tiny.yaml").write_text(
        "# my own model option\n_target_: dlrun.models.mlp.MLP\nhidden: [8]\n"
    )
    dlrun("--config-dir", str(tmp_path / "myconf"), "model=tiny", "debug=smoke")
    m = read_metrics(run_dirs(tmp_path)[0])
    assert m["status"] == "completed" and m["parameters"]["total"] == 64 * 8 + 8 + 8 * 10 + 10
