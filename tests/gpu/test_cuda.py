"""CUDA paths through the real `dlrun` command. Skipped cleanly where there is no GPU (CI); run
them on a GPU machine with `pytest -m gpu tests/gpu`."""

import pytest
import torch

from tests.conftest import read_metrics, run_dirs

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

QUICK = ["trainer.epochs=2", "trainer.progress=false"]


def test_device_cuda_trains_on_the_gpu(dlrun, tmp_path):
    dlrun("device=cuda", *QUICK)
    m = read_metrics(run_dirs(tmp_path)[0])
    assert m["device"].startswith("cuda") and m["status"] == "completed"
    assert m["peak_memory_mb"]["cuda"] > 0
    assert m["test"]["accuracy"] > 0.5


def test_auto_picks_cuda(dlrun, tmp_path):
    dlrun("device=auto", "debug=smoke")
    assert read_metrics(run_dirs(tmp_path)[0])["device"].startswith("cuda")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision(dlrun, tmp_path, precision):
    dlrun("device=cuda", f"trainer.precision={precision}", *QUICK)
    run = run_dirs(tmp_path)[0]
    assert read_metrics(run)["precision"] == precision
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert (ckpt["scaler"] is not None) == (precision == "fp16")


def test_compile_and_channels_last_on_a_cnn(dlrun, tmp_path):
    dlrun(
        "device=cuda",
        "model=cnn",
        "data=digits",
        "data.as_images=true",
        "trainer.compile=true",
        "trainer.channels_last=true",
        "trainer.precision=bf16",
        *QUICK,
    )
    assert read_metrics(run_dirs(tmp_path)[0])["status"] == "completed"


def test_resume_on_cuda_restores_cuda_rng(dlrun, tmp_path):
    dlrun("device=cuda", "trainer.epochs=1", "trainer.progress=false")
    run = run_dirs(tmp_path)[0]
    assert "cuda" in torch.load(run / "checkpoints" / "last.pt", weights_only=True)["rng"]
    dlrun("device=cuda", "trainer.epochs=2", "trainer.progress=false", f"resume={run}")
    assert read_metrics(run)["epochs_run"] == 2
