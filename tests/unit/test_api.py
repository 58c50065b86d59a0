"""The Python API (dlrun.train / dlrun.load), trainer.save_optimizer and the predict/export
config keys, in-process through Hydra's real machinery."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest

import dlrun
from dlrun.errors import ConfigError
from tests.conftest import REPO, dlrun_env

FAST = ["trainer.epochs=1", "plots=false", "logger=[]"]


def test_import_dlrun_does_not_import_torch():
    code = "import sys, dlrun; dlrun.__version__; assert 'torch' not in sys.modules, 'torch'"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=dlrun_env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def _hydra_state() -> tuple:
    import hydra._internal.hydra as internal
    from omegaconf.basecontainer import BaseContainer

    dlruns = sorted(n for n in BaseContainer._resolvers if n.startswith("dlrun_"))
    return internal.Callbacks, internal.Hydra.get_mode, dlruns


def test_train_twice_in_one_process_with_real_run_folders(tmp_path, monkeypatch):
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    monkeypatch.chdir(tmp_path)
    before = _hydra_state()
    first = dlrun.train([*FAST, "seed=1"])
    second = dlrun.train([*FAST, "seed=2", "model=linear"])
    assert first.run_dir != second.run_dir
    for result in (first, second):
        assert result.status == "completed"
        assert result.run_dir.resolve().parent.parent == (tmp_path / "outputs").resolve()
        assert (result.run_dir / ".hydra" / "config.yaml").is_file()  # Hydra's own files
        assert (result.run_dir / "predictions_test.csv").is_file()
        assert 0 <= result.test["accuracy"] <= 1
    assert second.record["model"] == "Perceptron" and "seed=2" in second.record["overrides"]
    assert not GlobalHydra.instance().is_initialized() and not HydraConfig.initialized()
    assert _hydra_state() == before  # dlrun's resolvers and callback check were taken back out

    with pytest.raises(ConfigError, match="trainer.epochs=0 is invalid"):
        dlrun.train(["trainer.epochs=0"])
    assert not GlobalHydra.instance().is_initialized()
    with pytest.raises(ConfigError, match="model/no_such_model"):
        dlrun.train(["model=no_such_model"])
    with pytest.raises(TypeError):
        dlrun.train("trainer.epochs=1")

    model = first.load(device="cpu")
    x = np.random.default_rng(0).integers(0, 17, size=(3, 64))
    pred = model.predict(x)
    assert len(pred.labels) == 3 and pred.probabilities.shape == (3, 10)
    assert np.allclose(pred.probabilities.sum(1), 1, atol=1e-5)


def test_save_optimizer_false_writes_small_checkpoints_that_refuse_resume(tmp_path, monkeypatch):
    import torch

    monkeypatch.chdir(tmp_path)
    slim = dlrun.train([*FAST, "trainer.save_optimizer=false"])
    full = dlrun.train(FAST)
    slim_ckpt = torch.load(slim.run_dir / "checkpoints/last.pt", weights_only=True)
    assert slim_ckpt["optimizers"] is None and slim_ckpt["preprocessing"]["kind"] == "table"
    slim_size, full_size = (
        (r.run_dir / "checkpoints/last.pt").stat().st_size for r in (slim, full)
    )
    assert slim_size < full_size * 0.6  # Adam keeps two more tensors per weight
    with pytest.raises(ConfigError, match="saved with trainer.save_optimizer=false"):
        dlrun.train(
            [*FAST, "trainer.epochs=2", "trainer.save_optimizer=false", f"resume={slim.run_dir}"]
        )
    assert dlrun.load(slim.run_dir, "cpu").predict(np.zeros((1, 64))).labels  # still usable


def test_regression_predictions_are_in_the_target_units(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = 1000 + 250 * x[:, 0] - 80 * x[:, 2] + rng.normal(scale=5, size=300)
    for name, part in (("train", slice(0, 240)), ("test", slice(240, 300))):
        with (tmp_path / f"{name}.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["a", "b", "c", "price"])
            writer.writerows([*row, f"{t:.3f}"] for row, t in zip(x[part], y[part], strict=True))
    run = dlrun.train(
        [
            "data=csv",
            "data.path=train.csv",
            "data.test_path=test.csv",
            "data.target=price",
            "data.task=regression",
            "trainer.epochs=5",
            "plots=false",
        ]
    )
    with (run.run_dir / "predictions_test.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [float(r["true"]) for r in rows] == pytest.approx(y[240:], abs=1e-2)
    predicted = np.array([float(r["predicted"]) for r in rows])
    assert np.abs(predicted - y[240:]).mean() == pytest.approx(run.test["mae"], rel=1e-3)
    values = dlrun.load(run.run_dir, "cpu").predict(tmp_path / "test.csv").values[:, 0]
    assert values == pytest.approx(predicted, rel=1e-5)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["mode=predict", "input=x.csv"], "mode=predict needs ckpt=RUN_FOLDER"),
        (["mode=export"], "mode=export needs ckpt=RUN_FOLDER"),
        (["mode=serve"], "mode='serve' is invalid"),
        (["topk=0"], "topk=0 is invalid"),
        (["format=tflite"], "format='tflite' is invalid"),
        (["export=[onnx,coreml]"], "export=['onnx', 'coreml'] is invalid"),
        (["predict.on_error=ignore"], "predict.on_error='ignore' is invalid"),
        (["trainer.save_optimizer=maybe"], "trainer.save_optimizer='maybe' is invalid"),
    ],
)
def test_predict_and_export_keys_are_validated(compose, overrides, message):
    from dlrun.validate import validate_config

    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate_config(compose(*overrides))


def test_predict_mode_ignores_the_training_data_keys(compose):
    from dlrun.validate import validate_config

    validate_config(compose("mode=predict", "ckpt=run", "input=x.csv", "data=csv"))  # data.path=???
