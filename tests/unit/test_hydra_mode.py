"""The command composes its config once (Hydra's own path composes it twice, the first time only
to read `hydra.mode`): dlrun/cli.py skips that first composition unless the command line could
bring in a hydra.mode, so these tests keep both halves of that true."""

from __future__ import annotations

import yaml
from hydra._internal.hydra import Hydra

from tests.conftest import REPO, run_dirs


def test_no_bundled_config_sets_hydra_mode():
    files = sorted((REPO / "conf").rglob("*.yaml"))
    assert len(files) > 30
    for path in files:
        text = path.read_text()
        if path.is_relative_to(REPO / "conf" / "hydra"):  # e.g. hydra/launcher: under hydra.<group>
            assert "@package" not in text, path
            continue
        content = yaml.safe_load(text) or {}
        assert "mode" not in (content.get("hydra") or {}), path


def test_a_plain_command_composes_its_config_once(dlrun, monkeypatch):
    calls = []
    compose = Hydra.compose_config

    def counted(self, *args, **kwargs):
        calls.append(kwargs.get("run_mode"))
        return compose(self, *args, **kwargs)

    monkeypatch.setattr(Hydra, "compose_config", counted)
    dlrun("debug=smoke")
    assert len(calls) == 1, calls


def test_hydra_mode_on_the_command_line_is_still_read(dlrun, tmp_path):
    # no -m: Hydra learns the mode by composing first, which dlrun keeps for such commands
    dlrun("hydra.mode=MULTIRUN", "seed=1,2", "debug=smoke")
    runs = run_dirs(tmp_path)
    assert len(runs) == 2 and all("multirun" in str(r) for r in runs), runs
