"""The docs' plugin example (docs/plugins.md) is the one the tests run: examples/plugin/, file for
file."""

from __future__ import annotations

from tests.conftest import REPO
from tests.smoke.test_plugins import COMMAND, EXAMPLE


def test_the_docs_show_the_example_files_and_command_the_tests_run():
    # the whole page is the plugins section
    section = (REPO / "docs" / "plugins.md").read_text()
    for name, lang in (
        ("mymodels.py", "python"),
        ("mydata.py", "python"),
        ("conf/data/blobs.yaml", "yaml"),
    ):
        code = (EXAMPLE / name).read_text().rstrip("\n")
        assert f"`{name}`:\n\n```{lang}\n{code}\n```" in section, name
    assert f"dlrun {' '.join(COMMAND)} trainer.epochs=20" in section
