"""The trust boundary, attacked through the real command: each way a config could reach code
that writes files or runs a payload is refused in one line, and the payload never runs.

Payloads are real file writers that exist in dlrun's dependencies (no network needed): unpacking
an archive, creating a download folder, touching a file. Each would leave `pwned` in tmp_path.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch


def _archive(tmp_path: Path) -> Path:
    """A zip whose one file is the marker: extract_archive writes tmp_path/pwned/marker."""
    path = tmp_path / "payload.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("marker", "written by a config")
    return path


def _refused(proc, *needles: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("dlrun: error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    "payload",
    [
        {
            "_target_": "torchvision.datasets.utils.extract_archive",
            "from_path": "ZIP",
            "to_path": "PWNED",
        },
        {
            "_target_": "torchvision.datasets.utils.download_url",
            "url": "http://127.0.0.1:9/x",
            "root": "PWNED",
            "filename": "x",
        },
    ],
)
def test_a_checkpoints_config_cannot_build_a_file_writer(dlrun, tmp_path, payload):
    """mode=eval merges the checkpoint's data section: it may name dlrun's built-ins only."""
    marker = tmp_path / "pwned"
    values = {"ZIP": str(_archive(tmp_path)), "PWNED": str(marker)}
    data = {k: values.get(v, v) for k, v in payload.items()}
    evil = tmp_path / "evil.pt"
    config = {"model": {"_target_": "dlrun.models.mlp.MLP", "hidden": [8]}, "data": data}
    torch.save({"format": "dlrun-checkpoint", "version": 1, "config": config, "model": {}}, evil)
    proc = dlrun("mode=eval", f"ckpt={evil}", expect_fail=True)
    assert not marker.exists()
    _refused(proc, f"data._target_='{payload['_target_']}'", "not a dlrun built-in")


def test_a_target_nested_in_constructor_arguments_is_refused(dlrun, tmp_path):
    marker = tmp_path / "pwned"
    proc = dlrun(
        "loss=cross_entropy",
        "trainer.epochs=1",
        "+loss.weight._target_=torchvision.datasets.utils.extract_archive",
        f"+loss.weight.from_path={_archive(tmp_path)}",
        f"+loss.weight.to_path={marker}",
        expect_fail=True,
    )
    assert not marker.exists()
    _refused(proc, "loss.weight._target_='torchvision.datasets.utils.extract_archive'")


def test_a_target_under_a_key_named_hydra_is_refused(dlrun, tmp_path):
    marker = tmp_path / "pwned"
    proc = dlrun(
        "loss=cross_entropy",
        "trainer.epochs=1",
        "+loss.weight.hydra._target_=pathlib.Path.touch",
        f"+loss.weight.hydra._args_=['{marker}']",
        expect_fail=True,
    )
    assert not marker.exists()
    _refused(proc, "loss.weight.hydra._target_='pathlib.Path.touch' is not allowed")


def test_a_partial_target_that_dlrun_would_call_is_refused(dlrun, tmp_path):
    """optimizer is a `_partial_` that dlrun calls with the parameters: a file writer there."""
    marker = tmp_path / "pwned"
    proc = dlrun(
        "trainer.epochs=1",
        "optimizer._target_=torchvision.datasets.utils.download_url",
        "~optimizer.lr",
        "~optimizer.betas",
        "~optimizer.weight_decay",
        f"+optimizer.root={marker}",
        "+optimizer.filename=x",
        expect_fail=True,
    )
    assert not marker.exists()
    _refused(proc, "optimizer._target_='torchvision.datasets.utils.download_url' is not allowed")


def test_a_hydra_callback_that_is_not_dlrun_s_own_is_refused(dlrun, tmp_path):
    """Hydra builds hydra.callbacks before any dlrun code runs: they are checked where it does."""
    marker = tmp_path / "pwned"
    proc = dlrun(
        "trainer.epochs=1",
        "+hydra.callbacks.evil._target_=pathlib.Path.touch",
        f"+hydra.callbacks.evil._args_=['{marker}']",
        expect_fail=True,
    )
    assert not marker.exists()
    _refused(proc, "hydra.callbacks.evil._target_='pathlib.Path.touch' is not allowed")


def test_env_set_cannot_switch_on_test_only_behaviour(dlrun, tmp_path):
    """hydra.job.env_set sets environment variables for the job; dlrun's test-only switches
    (failpoints, dataset checksum skips) are Python attributes, not environment variables, so
    neither the old names nor anything else set there reaches them."""
    from tests.datasets import write_cifar

    write_cifar(tmp_path / "data", n_train=24, n_test=12)
    env_set = [
        "+hydra.job.env_set.DLRUN_FAILPOINTS=train_bug:1",
        "+hydra.job.env_set.DLRUN_TEST_SKIP_MD5=1",
    ]
    trained = dlrun("debug=smoke", *env_set)  # the failpoint would fail the first batch
    assert "completed" in (tmp_path / "outputs").rglob("metrics.json").__next__().read_text()
    refused = dlrun(
        "model=cnn",
        "data=cifar10",
        f"data.root={tmp_path / 'data'}",
        "data.download=false",
        "debug=smoke",
        *env_set,
        expect_fail=True,
    )
    assert trained.returncode == 0
    assert refused.returncode != 0 and "MD5" in refused.stderr, refused.stderr
