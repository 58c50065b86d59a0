"""Point 1 and 6 of the trust model: whatever a file holds is plain data. A checkpoint's config
strings are text (no `${oc.env:...}` read on the reader's machine), its data state is handed to
the data builder as plain values (a nested `_target_` in it is never built), and data values that
look like interpolations or missing values (`${...}`, `???`) stay what they are.

Each test ran its payload on main before the fix (noted in its docstring)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_dlrun
from tests.security.conftest import refused


def test_an_interpolation_in_a_checkpoints_config_is_text(run_copy, tamper, tmp_path):
    """Before: `model.activation: ${oc.env:I24_SECRET}` was resolved by instantiate from the
    reader's environment (the eval ran with activation=relu read from I24_SECRET)."""
    for name in ("best", "last"):
        tamper(
            run_copy / "checkpoints" / f"{name}.pt",
            lambda c: c["config"]["model"].update(activation="${oc.env:I24_SECRET}"),
        )
    for mode in ("eval", "predict", "export"):
        args = [f"mode={mode}", f"ckpt={run_copy}", f"hydra.run.dir={mode}"]
        args += [f"input={tmp_path / 'rows.csv'}"] if mode == "predict" else []
        (tmp_path / "rows.csv").write_text("x\n1\n")
        proc = run_dlrun(*args, cwd=tmp_path, I24_SECRET="relu")
        refused(proc, "model.activation='${oc.env:I24_SECRET}'")


def test_a_nested_target_in_a_checkpoints_data_state_is_never_built(table_run, tmp_path, tamper):
    """Before: the checkpoint's data state went to instantiate as a keyword argument, which built
    `{"_target_": "os.makedirs", "_args_": [marker]}` inside it: the marker folder appeared."""
    run = Path(shutil.copytree(table_run, tmp_path / "run"))
    marker = tmp_path / "pwned"
    payload = {"_target_": "os.makedirs", "_args_": [str(marker)]}
    # the table's own state is left out (eval then fits it again from the CSV): only the payload
    tamper(run / "checkpoints" / "best.pt", lambda c: c.update(data_state={"evil": payload}))
    proc = run_dlrun("mode=eval", f"ckpt={run}", "hydra.run.dir=ev", cwd=tmp_path)
    assert not marker.exists()
    assert proc.returncode == 0, proc.stderr  # the unknown key is simply not read


def test_category_values_that_look_like_interpolations_stay_text(table_run, tmp_path):
    """Before: category values `${oc.env:I24_COLOUR}` and `???` in the checkpoint's table state
    went through OmegaConf, so eval encoded the test rows differently from training (or failed
    on the missing value). Now eval of the training run's own best.pt gives its test metrics."""
    trained = json.loads((table_run / "metrics.json").read_text())["test"]
    proc = run_dlrun(
        "mode=eval", f"ckpt={table_run}", "hydra.run.dir=ev", cwd=tmp_path, I24_COLOUR="blue"
    )
    assert proc.returncode == 0, proc.stderr
    evaluated = json.loads((tmp_path / "ev" / "metrics.json").read_text())["test"]
    assert evaluated["accuracy"] == trained["accuracy"]
    # float32 sums over other batch boundaries differ in the last digits; a changed encoding
    # of the test rows moves the loss by far more (and the accuracy: 0.5 against 0.875)
    assert evaluated["loss"] == pytest.approx(trained["loss"], rel=1e-5)
