"""Point 4 of the trust model: a refused command and a read-only command (eval, predict,
export) change nothing in the run folder they were pointed at.

Before the fix: a resume refused for a changed setting had already let Hydra rewrite the run's
.hydra/config.yaml (after which resume=auto no longer found the run), and `mode=eval ckpt=RUN
resume=RUN` (or export) replaced the training run's metrics.json with the evaluation's."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.conftest import run_dlrun
from tests.security.conftest import refused


def _contents(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ("optimizer.lr=0.5", "the config differs in optimizer.lr"),  # (the epochs may change)
        ("trainer.epochs=1", "has already trained 2 epochs"),
        ("trainer.epochs=-3", "trainer.epochs=-3 is invalid"),
    ],
)
def test_a_refused_resume_changes_nothing(run_copy, tmp_path, change, needle):
    before = _contents(run_copy)
    proc = run_dlrun(f"resume={run_copy}", "debug=smoke", change, cwd=tmp_path)
    refused(proc, needle)
    assert _contents(run_copy) == before


@pytest.mark.parametrize("mode", ["eval", "export"])
def test_a_read_only_command_never_writes_the_run_it_reads(run_copy, tmp_path, mode):
    before = _contents(run_copy)
    for where in (f"resume={run_copy}", f"hydra.run.dir={run_copy}/{mode}"):
        proc = run_dlrun(f"mode={mode}", f"ckpt={run_copy}", where, cwd=tmp_path)
        assert _contents(run_copy) == before, proc.stdout + proc.stderr
        if where.startswith("resume="):  # resume means nothing to a read-only command
            assert proc.returncode == 0, proc.stderr
            assert list((tmp_path / "outputs").glob("*/*/.hydra/config.yaml"))  # its own folder
        else:
            refused(proc, "never writes into the run it reads")


def test_a_resume_refused_only_when_its_weights_do_not_fit_changes_nothing(
    run_copy, tmp_path, tamper
):
    """A checkpoint whose config passes the checks made before Hydra writes, but whose weights
    do not fit the model: the refusal comes after Hydra rewrote .hydra/ and appended to the log.
    Before: those stayed rewritten. Now the folder is put back as it was."""
    import torch

    def wrong_shape(ckpt: dict) -> None:
        name = next(iter(ckpt["model"]))
        ckpt["model"][name] = torch.zeros(3, 3)

    for name in ("last.pt", "best.pt"):
        tamper(run_copy / "checkpoints" / name, wrong_shape)
    before = _contents(run_copy)
    proc = run_dlrun(f"resume={run_copy}", "debug=smoke", "trainer.epochs=3", cwd=tmp_path)
    refused(proc)
    assert _contents(run_copy) == before
