"""What a run records of its config, and how a file's config is read back."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from dlrun import resume
from dlrun.config_record import literal, recorded


def test_environment_lookups_are_recorded_unresolved(monkeypatch):
    monkeypatch.setenv("DLRUN_TEST_TOKEN", "s3cr3t-value")
    cfg = OmegaConf.create(
        {
            "a": "${oc.env:DLRUN_TEST_TOKEN}",
            "b": "uri://${a}/x",
            "n": {"lr": 0.1, "c": "${n.lr}"},
            "d": "${oc.decode:${oc.env:DLRUN_TEST_TOKEN}}",
        }
    )
    plain = recorded(cfg)
    assert "s3cr3t-value" not in repr(plain)
    assert plain["a"] == plain["d"] == "${oc.env:DLRUN_TEST_TOKEN}"
    assert plain["b"] == "uri://${oc.env:DLRUN_TEST_TOKEN}/x" and plain["n"]["c"] == 0.1
    assert cfg.a == "s3cr3t-value"  # the run itself still reads the environment


@pytest.mark.parametrize(
    "text", ["${oc.env:HOME}", "a\\${x}", "a\\\\${oc.env:HOME}", "C:\\dir\\", "plain", "${a}${b}"]
)
def test_a_files_strings_read_back_literally(text):
    merged = OmegaConf.create({"section": literal({"k": [text], "n": 3})})
    assert OmegaConf.to_container(merged, resolve=True) == {"section": {"k": [text], "n": 3}}


def test_a_checkpoint_outside_a_run_folder_has_no_run_folder(tmp_path):
    loose = tmp_path / "downloads" / "checkpoints" / "model.pt"
    loose.parent.mkdir(parents=True)
    assert resume.run_folder(loose) is None and resume.run_folder(tmp_path / "x.pt") is None
    (tmp_path / "downloads" / "metrics.json").write_text("{}")
    assert resume.run_folder(loose) == tmp_path / "downloads"
