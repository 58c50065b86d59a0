"""Your own code: the docs' example plugin (examples/plugin/, shown in docs/plugins.md) trained by
`plugins=` and as an installed package's entry point; a checkpoint naming plugin code; secrets
kept out of run files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path

import torch

from tests.conftest import REPO, read_metrics, run_dirs, run_dlrun

EXAMPLE = REPO / "examples" / "plugin"
# docs/plugins.md's command, word for word (tests/unit/test_readme_plugin.py keeps them the same).
COMMAND = ["--config-dir", "conf", "plugins=[mymodels,mydata]", "model=tiny_net", "data=blobs"]


def _copy_example(to: Path, modules: bool = True) -> None:
    shutil.copytree(EXAMPLE / "conf", to / "conf")
    if modules:
        for name in ("mymodels.py", "mydata.py"):
            shutil.copy(EXAMPLE / name, to / name)


def test_the_readme_example_trains_and_its_checkpoint_needs_the_plugin_named(dlrun, tmp_path):
    _copy_example(tmp_path)
    dlrun(*COMMAND, "trainer.epochs=20")
    (run,) = run_dirs(tmp_path)
    record = read_metrics(run)
    assert record["status"] == "completed" and record["model"] == "TinyNet"
    assert record["test"]["accuracy"] > 0.8  # well-separated blobs
    # The checkpoint names plugin code: evaluated only when this command lists the plugins.
    refused = dlrun("mode=eval", f"ckpt={run}", expect_fail=True)
    assert refused.returncode == 2
    assert "model._target_='mymodels.TinyNet'" in refused.stderr
    assert "plugins=[mymodels]" in refused.stderr
    dlrun("mode=eval", f"ckpt={run}", "plugins=[mymodels,mydata]")
    evaluated = read_metrics(run_dirs(tmp_path)[-1])
    assert evaluated["mode"] == "eval" and evaluated["test"] == record["test"]


def test_a_checkpoints_own_plugins_are_never_imported(dlrun, tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Net: pass\n")
    config = {
        "plugins": ["evil"],
        "model": {"_target_": "evil.Net"},
        "data": {"_target_": "dlrun.data.tabular.digits"},
    }
    evil = tmp_path / "downloaded" / "evil.pt"  # not the folder the eval run writes under
    evil.parent.mkdir()
    torch.save({"format": "dlrun-checkpoint", "version": 1, "config": config, "model": {}}, evil)
    proc = dlrun("mode=eval", f"ckpt={evil}", expect_fail=True)
    assert not marker.exists()
    assert proc.returncode == 2 and "model._target_='evil.Net'" in proc.stderr


def test_an_installed_plugin_works_through_its_entry_point(tmp_path):
    """pip install of examples/plugin (its pyproject.toml declares the dlrun.plugins entry point)
    into a folder on PYTHONPATH; the command names no plugins and the modules are not in cwd."""
    source, site, work = tmp_path / "src", tmp_path / "site", tmp_path / "work"
    shutil.copytree(EXAMPLE, source)
    pip = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--target",
        str(site),
        str(source),
    ]
    subprocess.run(pip, check=True, capture_output=True, text=True, timeout=240)
    found = {
        ep.name: ep.value
        for dist in distributions(path=[str(site)])
        for ep in dist.entry_points
        if ep.group == "dlrun.plugins"
    }
    assert found == {"mymodels": "mymodels", "mydata": "mydata"}
    work.mkdir()
    _copy_example(work, modules=False)
    path = f"{REPO}:{site}"
    listed = run_dlrun("list", cwd=work, PYTHONPATH=path)
    assert listed.returncode == 0, listed.stderr
    assert "mymodels (entry point of dlrun-example-plugin)" in listed.stdout
    assert "model tiny_net: mymodels.TinyNet  (model=tiny_net)" in listed.stdout
    proc = run_dlrun(
        "--config-dir",
        "conf",
        "model=tiny_net",
        "data=blobs",
        "trainer.epochs=2",
        cwd=work,
        PYTHONPATH=path,
    )
    assert proc.returncode == 0, proc.stderr
    assert read_metrics(run_dirs(work)[0])["model"] == "TinyNet"


def test_a_secret_from_the_environment_is_not_written_into_the_run(dlrun, tmp_path):
    secret = "hunter2-do-not-record"
    dlrun(
        "trainer.epochs=1",
        "plots=false",
        "+tracking_token=${oc.env:DLRUN_TEST_TOKEN}",
        DLRUN_TEST_TOKEN=secret,
    )
    (run,) = run_dirs(tmp_path)
    files = [p for p in run.rglob("*") if p.is_file()]
    assert any(p.name == "last.pt" for p in files) and (run / "model.yaml") in files
    leaking = [str(p) for p in files if secret.encode() in p.read_bytes()]
    assert not leaking
    assert "${oc.env:DLRUN_TEST_TOKEN}" in (run / "model.yaml").read_text()
    saved = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert saved["config"]["tracking_token"] == "${oc.env:DLRUN_TEST_TOKEN}"
