"""RNG state in checkpoints: a saved state, written and read back as a checkpoint is, replays
the same random numbers; checkpoints written before the compact python-state format still load."""

import io
import random

import numpy as np
import pytest
import torch

from dlrun import checkpoint


def _draws() -> list[float]:
    return [random.random(), float(np.random.rand()), float(torch.rand(1))]


def _round_trip(state: dict) -> dict:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.parametrize("python_format", ["tensor", "tuple (before 2026-11-26)"])
def test_saved_rng_state_replays_the_same_numbers(python_format):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    state = checkpoint.rng_state()
    if python_format != "tensor":
        state["python"] = random.getstate()  # what older checkpoints held
    expected = _draws()
    _draws()  # move every generator on
    checkpoint.restore_rng(_round_trip(state))
    assert _draws() == expected


def test_epoch_copies_are_pruned_by_number_not_by_name(tmp_path):
    for epoch in (998, 999, 1000, 1001):
        (tmp_path / f"epoch_{epoch:03d}.pt").write_bytes(b"")
    checkpoint.prune_epoch_copies(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_1000.pt", "epoch_1001.pt"]


def test_run_files_get_the_mode_a_plain_open_would_give(tmp_path):
    import os

    from dlrun.artifacts import RunArtifacts
    from dlrun.atomic import NEW_FILE_MODE

    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    checkpoint.save_atomic({"w": torch.zeros(2)}, last, copies=(best,))
    checkpoint.export_safetensors({"w": torch.zeros(2)}, tmp_path / "model.safetensors")
    RunArtifacts(tmp_path).write_metrics({"status": "running"})
    for name in ("last.pt", "best.pt", "model.safetensors", "metrics.json"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == NEW_FILE_MODE, name  # not mkstemp's 0600
    assert NEW_FILE_MODE & 0o400
