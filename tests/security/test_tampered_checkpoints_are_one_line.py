"""A checkpoint altered by someone else is data that does not fit: one line, exit 2, never a
traceback. Before the fix each of these ended in a Python traceback (load_state_dict's size
mismatch and missing keys, a class index past a short class_names list, a config value that is
not plain data)."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import run_dlrun
from tests.security.conftest import refused


def _shape(ckpt: dict) -> None:
    name = next(iter(ckpt["model"]))
    ckpt["model"][name] = torch.zeros(3, 3)


def _missing(ckpt: dict) -> None:
    ckpt["model"].pop(next(iter(ckpt["model"])))


def _type(ckpt: dict) -> None:
    ckpt["model"] = ["not", "weights"]


def _short_class_names(ckpt: dict) -> None:
    ckpt["preprocessing"]["class_names"] = ["0", "1"]


def _tensor_in_config(ckpt: dict) -> None:
    ckpt["config"]["model"]["hidden"] = torch.zeros(2)


CASES = {
    "shape": (_shape, "does not fit the model"),
    "missing": (_missing, "does not fit the model"),
    "type": (_type, "does not fit the model"),
    "short_class_names": (_short_class_names, "names 2 classes for a model of 10"),
    "tensor_in_config": (_tensor_in_config, "config.model.hidden holds a Tensor"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_tampered_checkpoint(run_copy, tmp_path, tamper, case):
    edit, needle = CASES[case]
    tamper(run_copy / "checkpoints" / "best.pt", edit)
    rows = tmp_path / "rows.csv"
    rows.write_text(",".join(f"pixel_{i}_{j}" for i in range(8) for j in range(8)) + "\n")
    rows.write_text(rows.read_text() + ",".join(["1"] * 64) + "\n")
    proc = run_dlrun("mode=predict", f"ckpt={run_copy}", f"input={rows}", cwd=tmp_path)
    refused(proc, needle)


def test_resuming_a_tampered_checkpoint(run_copy, tmp_path, tamper):
    tamper(run_copy / "checkpoints" / "last.pt", _shape)
    proc = run_dlrun(f"resume={run_copy}", "debug=smoke", "trainer.epochs=3", cwd=tmp_path)
    refused(proc, "does not fit the run")
