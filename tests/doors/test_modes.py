"""mode=eval|predict|export of a plugin model, each with the plugins the command names: export
as a real process (it once ignored its plugins and refused, asking for exactly them)."""

from __future__ import annotations

import shutil
import sys

from tests.conftest import REPO, read_metrics, run_command, run_dirs
from tests.smoke.test_predict import write_digits_csv


def test_a_plugin_model_is_evaluated_predicted_and_exported_with_its_plugins(dlrun, tmp_path):
    shutil.copy(REPO / "examples" / "plugin" / "mymodels.py", tmp_path / "mymodels.py")
    dlrun("plugins=[mymodels]", "model=tiny_net", "trainer.epochs=1")
    (run,) = run_dirs(tmp_path)
    dlrun("mode=eval", f"ckpt={run}", "plugins=[mymodels]")
    assert read_metrics(run_dirs(tmp_path)[-1])["test"] == read_metrics(run)["test"]
    _, _, new_csv = write_digits_csv(tmp_path)
    dlrun("mode=predict", f"ckpt={run}", f"input={new_csv}", "plugins=[mymodels]")
    assert (run_dirs(tmp_path)[-1] / "predictions.csv").is_file()
    proc = run_command(
        [sys.executable, "-m", "dlrun", "mode=export", f"ckpt={run}", "format=onnx"]
        + ["plugins=[mymodels]"],
        cwd=tmp_path,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    (exported,) = (tmp_path / "outputs").rglob("model.onnx")
    assert exported.parent != run and (exported.parent / "model.yaml").is_file()
