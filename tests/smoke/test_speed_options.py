"""GPU-oriented trainer options run on CPU too (CUDA-only paths are checked in tests/gpu)."""

import pytest

from tests.conftest import read_metrics, run_dirs


@pytest.mark.slow
def test_compile_trains_and_checkpoints_load(dlrun, tmp_path):
    dlrun("debug=smoke", "trainer.compile=true")
    run = run_dirs(tmp_path)[0]
    assert read_metrics(run)["status"] == "completed"
    import torch

    keys = torch.load(run / "checkpoints" / "best.pt", weights_only=True)["model"].keys()
    assert not any(k.startswith("_orig_mod") for k in keys)  # plain keys: loadable without compile


@pytest.mark.parametrize("precision", ["bf16", "32"])
def test_precision_option_runs_on_cpu(dlrun, tmp_path, precision):
    dlrun("debug=smoke", f"trainer.precision={precision}")
    assert read_metrics(run_dirs(tmp_path)[0])["precision"] == precision


def test_bad_compile_mode_is_refused(dlrun):
    proc = dlrun("trainer.compile=fastest", expect_fail=True)
    assert proc.returncode == 2 and "trainer.compile='fastest' is invalid" in proc.stderr
