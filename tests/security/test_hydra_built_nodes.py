"""Point 3 of the trust model: the nodes Hydra builds from a config file (its logging, launcher,
callbacks, and a file's `plugins:` list) are checked like any other, before Hydra builds them.

The attacker ships a config dir (`dlrun --config-dir DIR experiment=x`: an experiment someone
shared). Before the fix each payload ran: a log file handler truncated and filled the user's
`victim.txt`, a nested `_target_` under hydra.launcher made a marker folder when Hydra built the
launcher, `plugins: [evilmod]` in the file imported a module of the cwd (marker folder), and
`hydra.output_subdir: MARKER` made Hydra write the run's config.yaml into a folder the file
chose (env_set is refused for the same reason: a file does not set the job's environment)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_dlrun
from tests.security.conftest import refused

PAYLOADS = {
    "log_file": (
        "hydra:\n  job_logging:\n    handlers:\n      file:\n        class: logging.FileHandler\n"
        "        filename: VICTIM\n        mode: w\n",
        "hydra.job_logging.handlers.file.mode",
    ),
    "log_factory": (
        "hydra:\n  job_logging:\n    handlers:\n      evil:\n        (): os.makedirs\n"
        "        name: MARKER\n    root:\n      handlers: [console, evil]\n",
        "hydra.job_logging.handlers.evil.()",
    ),
    "launcher": (
        "defaults:\n  - override /hydra/launcher: slurm\nhydra:\n  launcher:\n"
        "    additional_parameters:\n      evil:\n        _target_: os.makedirs\n"
        "        _args_: [MARKER]\n",
        "hydra.launcher.additional_parameters.evil._target_='os.makedirs' is not allowed",
    ),
    "plugins": ("plugins: [evilmod]\n", "plugins: evilmod comes from a config file"),
    "output_subdir": ("hydra:\n  output_subdir: MARKER\n", "hydra.output_subdir="),
    "env_set": (
        "hydra:\n  job:\n    env_set:\n      PYTHONSTARTUP: VICTIM\n",
        "hydra.job.env_set=",
    ),
}


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_a_config_dir_cannot_reach_what_hydra_builds(tmp_path, name):
    text, needle = PAYLOADS[name]
    victim, marker = tmp_path / "victim.txt", tmp_path / "pwned"
    victim.write_text("precious\n")
    (tmp_path / "evilmod.py").write_text(f"import os\nos.makedirs({str(marker)!r})\n")
    experiment = tmp_path / "cd" / "experiment" / "evil.yaml"
    experiment.parent.mkdir(parents=True)
    text = text.replace("VICTIM", str(victim)).replace("MARKER", str(marker))
    experiment.write_text("# @package _global_\n" + text)
    multirun = ["-m"] if name == "launcher" else []
    proc = run_dlrun(
        *multirun,
        "--config-dir",
        str(experiment.parent.parent),
        "experiment=evil",
        "debug=smoke",
        cwd=tmp_path,
    )
    assert victim.read_text() == "precious\n"
    assert not marker.exists()
    refused(proc, needle)


def test_a_library_is_never_a_plugin(tmp_path):
    """Even typed: `plugins=[shutil]` would make every shutil function buildable by a file."""
    for library in ("shutil", "torch", "os.path", "builtins"):
        refused(run_dlrun(f"plugins=[{library}]", "debug=smoke", cwd=tmp_path), "is a library")


def test_two_plugins_registering_one_short_name(tmp_path: Path):
    for module in ("first", "second"):
        (tmp_path / f"{module}.py").write_text(
            "import dlrun\nfrom torch import nn\n\n"
            "@dlrun.register('model', 'twin')\nclass Twin(nn.Linear):\n    pass\n"
        )
    proc = run_dlrun("plugins=[first,second]", "model=twin", "debug=smoke", cwd=tmp_path)
    refused(proc, "first.Twin", "second.Twin", "model=twin")


def test_a_plugin_cannot_take_a_built_in_short_name(tmp_path: Path):
    (tmp_path / "shadow.py").write_text(
        "import dlrun\nfrom torch import nn\n\n"
        "@dlrun.register('model', 'mlp')\nclass Mlp(nn.Linear):\n    pass\n"
    )
    proc = run_dlrun("plugins=[shadow]", "debug=smoke", cwd=tmp_path)
    refused(proc, "takes the name of dlrun's own model=mlp")


def test_a_config_dirs_search_path_imports_nothing(tmp_path):
    """A config dir's own primary config (`--config-name evil`) with `hydra.searchpath:
    [pkg://evilpkg]`: Hydra imports the package while it composes, before the composed config is
    checked. Before: the package's code ran (marker folder), then the composed config was
    refused."""
    marker = tmp_path / "pwned"
    package = tmp_path / "evilpkg"
    package.mkdir()
    (package / "__init__.py").write_text(f"import os\nos.makedirs({str(marker)!r})\n")
    conf = tmp_path / "cd"
    conf.mkdir()
    (conf / "evil.yaml").write_text("hydra:\n  searchpath: [pkg://evilpkg]\n")
    proc = run_dlrun(
        "--config-dir", str(conf), "--config-name", "evil", cwd=tmp_path, PYTHONPATH=str(tmp_path)
    )
    refused(proc, "hydra.searchpath=", "comes from a config file")
    assert not marker.exists()
