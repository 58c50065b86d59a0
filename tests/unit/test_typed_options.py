"""Unknown config group options and dlrun keys on the command line: one line naming the closest
valid names (Hydra printed a multi-line listing and exited 1)."""

from __future__ import annotations

import pytest

from tests.security.conftest import refused


@pytest.mark.parametrize(
    ("arg", "needles"),
    [
        ("model=mlpp", ("model=mlpp is not a model option", "did you mean mlp?")),
        ("logger=[csv,tensorbord]", ("logger=tensorbord", "did you mean tensorboard?")),
        ("trainer.epoch=3", ("trainer.epoch is not a dlrun key", "trainer.epochs")),
        ("+trainer.epoch=3", ("trainer.epoch is not a dlrun key", "trainer.epochs")),
    ],
)
def test_an_unknown_option_or_key_is_one_line(dlrun, arg, needles):
    refused(dlrun(arg, "debug=smoke", expect_fail=True), *needles)


def test_a_config_dirs_own_options_are_known(dlrun, tmp_path):
    (tmp_path / "cd" / "experiment").mkdir(parents=True)
    (tmp_path / "cd" / "experiment" / "mine.yaml").write_text(
        "# @package _global_\ntrainer:\n  epochs: 1\n"
    )
    dlrun("--config-dir", str(tmp_path / "cd"), "experiment=mine", "debug=smoke")
