"""Crafted inputs for the trust-boundary attacks: a real trained run folder (made once per test
session by the real command), copied into each test's tmp_path and edited there as a stranger
would edit a folder before handing it over."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_dlrun


def refused(proc: Any, *needles: str) -> str:
    """The one `dlrun: error:` line of a refused command (exit 2, no traceback)."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("dlrun: error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny completed run (MLP on digits, 2 epochs of 3 batches), made by the real command."""
    root = tmp_path_factory.mktemp("trained")
    proc = run_dlrun("debug=smoke", "trainer.epochs=2", "hydra.run.dir=run", cwd=root)
    assert proc.returncode == 0, proc.stderr
    return root / "run"


@pytest.fixture
def run_copy(trained_run: Path, tmp_path: Path) -> Path:
    """This test's own copy of the trained run folder (tmp_path/run), free to tamper with."""
    return Path(shutil.copytree(trained_run, tmp_path / "run", symlinks=True))


@pytest.fixture
def tamper() -> Callable[..., None]:
    """tamper(file, edit): load a checkpoint, let `edit(ckpt)` change it, save it back (as
    plain containers and tensors: it still loads with weights_only=True)."""
    import torch

    def _tamper(file: Path, edit: Callable[[dict], None]) -> None:
        ckpt = torch.load(file, weights_only=True)
        edit(ckpt)
        torch.save(ckpt, file)

    return _tamper


def write_table(path: Path, rows: int = 120) -> Path:
    """A CSV whose category values are text that OmegaConf would read as an interpolation
    (`${...}`) or as a missing value (`???`): data, which must stay text."""
    colours = ["${oc.env:I24_COLOUR}", "???", "red"]
    lines = ["x,colour,label"]
    for i in range(rows):
        colour = colours[i % 3]
        label = "yes" if (i % 3 == 1) != (i % 7 == 0) else "no"
        lines.append(f"{(i * 37) % 11 / 10},{colour},{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def table_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A completed run on write_table's CSV (categories `${...}` and `???`)."""
    root = tmp_path_factory.mktemp("table")
    table = write_table(root / "table.csv")
    proc = run_dlrun(
        "debug=smoke",
        "data=csv",
        f"data.path={table}",
        "data.target=label",
        "trainer.limit_eval_batches=null",
        "hydra.run.dir=run",
        cwd=root,
        I24_COLOUR="red",
    )
    assert proc.returncode == 0, proc.stderr
    return root / "run"
