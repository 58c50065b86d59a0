"""The README's plugin example is the one the tests run: examples/plugin/, file for file."""

from __future__ import annotations

from tests.conftest import REPO
from tests.smoke.test_plugins import COMMAND, EXAMPLE


def test_the_readme_shows_the_example_files_and_command_the_tests_run():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Your own code: plugins") :]
    section = section[: section.index("\n## ", 1)]
    for name, lang in (
        ("mymodels.py", "python"),
        ("mydata.py", "python"),
        ("conf/data/blobs.yaml", "yaml"),
    ):
        code = (EXAMPLE / name).read_text().rstrip("\n")
        assert f"`{name}`:\n\n```{lang}\n{code}\n```" in section, name
    assert f"dlrun {' '.join(COMMAND)} trainer.epochs=20" in section
