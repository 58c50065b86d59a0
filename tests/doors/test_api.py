"""`dlrun.train(overrides, config_dir=...)` with plugins, and `dlrun.load(run, plugins=[...])`, in
a script of its own (a fresh interpreter: the API alone, no command ever ran in it), with the
docs' plugin example (examples/plugin/)."""

from __future__ import annotations

import sys

from tests.conftest import read_metrics, run_command, run_dirs
from tests.smoke.test_plugins import _copy_example

SCRIPT = """
import numpy as np
import dlrun
from dlrun.errors import ConfigError

overrides = ["plugins=[mymodels,mydata]", "model=tiny_net", "data=blobs", "trainer.epochs=3"]
result = dlrun.train([*overrides, "plots=false"], config_dir="conf")
assert result.status == "completed", result.record
try:
    dlrun.load(result.run_dir)
    raise AssertionError("loaded plugin code its caller did not name")
except ConfigError as err:
    assert "plugins=[my" in str(err), err
predictor = dlrun.load(result.run_dir, plugins=["mymodels", "mydata"])
rows = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
print("predicted", len(predictor.predict(rows).index))
try:
    dlrun.train(overrides)  # without the config dir: data/blobs is not an option
except ConfigError as err:
    print("refused:", err)
"""


def test_train_with_plugins_and_a_config_dir_then_load_with_plugins(tmp_path):
    _copy_example(tmp_path)
    proc = run_command(
        [sys.executable, "-c", SCRIPT],
        cwd=tmp_path,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert "predicted 5" in proc.stdout
    assert "refused:" in proc.stdout and "blobs" in proc.stdout
    runs = run_dirs(tmp_path)
    assert [read_metrics(r).get("model") for r in runs][0] == "TinyNet"
