"""mode=predict reads inputs a stranger may have made: they are data, and bad data is one line.

Before the fix: a FIFO as input= hung the command (it read the whole "file" first), a PNG that
claims gigapixels was decoded or crashed with a traceback, a checkpoint's
trainer.eval_batch_size=0 gave an empty predictions.csv and exit 0, and input cells such as
`=HYPERLINK(...)` went into predictions.csv as they were, for a spreadsheet to run."""

from __future__ import annotations

import csv
import os
import struct
import zlib
from pathlib import Path

import pytest

from tests.conftest import run_dlrun
from tests.security.conftest import refused


@pytest.fixture(scope="session")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images")
    proc = run_dlrun(
        "debug=smoke", "model=cnn", "data.as_images=true", "hydra.run.dir=run", cwd=root
    )
    assert proc.returncode == 0, proc.stderr
    return root / "run"


def _bomb_png(path: Path, side: int = 30_000) -> Path:
    """A valid 1-bit PNG of side x side pixels (900 megapixels) in a few hundred KB."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    data = zlib.compress(row * side, 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )
    return path


def test_an_input_that_is_not_a_regular_file(image_run, tmp_path):
    """An image model reads its input's first bytes to tell an image from an MNIST/CIFAR file:
    on main it read the whole FIFO (a hang; /dev/zero: until memory ran out)."""
    fifo = tmp_path / "inputs.png"
    os.mkfifo(fifo)
    proc = run_dlrun(
        "mode=predict",
        f"ckpt={image_run}",
        f"input={fifo}",
        cwd=tmp_path,
        process=True,
        timeout=60,
    )
    refused(proc, "is not a regular file or a folder")


def test_a_decompression_bomb_image(image_run, tmp_path):
    bomb = _bomb_png(tmp_path / "bomb.png")
    proc = run_dlrun("mode=predict", f"ckpt={image_run}", f"input={bomb}", cwd=tmp_path)
    refused(proc, "decompression bomb")


def test_a_checkpoints_eval_batch_size_must_be_positive(run_copy, tmp_path, tamper):
    tamper(
        run_copy / "checkpoints" / "best.pt",
        lambda c: c["config"]["trainer"].update(eval_batch_size=0),
    )
    rows = tmp_path / "rows.csv"
    rows.write_text("pixel_0_0\n1\n")
    proc = run_dlrun("mode=predict", f"ckpt={run_copy}", f"input={rows}", cwd=tmp_path)
    refused(proc, "trainer.eval_batch_size=0 is not a positive integer")


def test_formula_cells_are_neutralised_in_predictions(trained_run, tmp_path):
    features = [f"pixel_{i}_{j}" for i in range(8) for j in range(8)]
    formulas = ['=HYPERLINK("http://example.invalid","x")', "@SUM(1+1)", "+1+1", "-2+3"]
    with (tmp_path / "rows.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*features, "note"])
        for note in [*formulas, "-0.5"]:
            writer.writerow([*(["1"] * 64), note])
    proc = run_dlrun(
        "mode=predict",
        f"ckpt={trained_run}",
        f"input={tmp_path / 'rows.csv'}",
        "hydra.run.dir=out",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    with (tmp_path / "out" / "predictions.csv").open(newline="") as f:
        notes = [row["note"] for row in csv.DictReader(f)]
    assert notes == [*("'" + n for n in formulas), "-0.5"]  # a number stays a number
