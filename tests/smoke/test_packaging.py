"""A plain (non-editable) install ships conf/ inside the package and runs from any folder."""

import subprocess
import sys
import zipfile

import pytest

from tests.conftest import REPO, read_metrics, run_command, run_dirs


@pytest.mark.slow
def test_wheel_carries_the_configs_and_runs_outside_the_repo(tmp_path):
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if build.returncode != 0 and "hatchling" in build.stderr:
        build = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(wheels), str(REPO)],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("dlrun-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "dlrun/conf/config.yaml" in names and "dlrun/conf/model/mlp.yaml" in names
    # dlrun's Optuna sweeper, in Hydra's plugin namespace (a namespace package: no __init__.py)
    assert "hydra_plugins/dlrun_optuna_sweeper/dlrun_optuna_sweeper.py" in names
    assert "hydra_plugins/__init__.py" not in names
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    proc = run_command([sys.executable, "-m", "dlrun", "debug=smoke"], work, 300, env)
    assert proc.returncode == 0, proc.stderr
    assert read_metrics(run_dirs(work)[0])["status"] == "completed"
    search = run_command(
        [sys.executable, "-m", "dlrun", "hparams_search=optuna", "--cfg", "hydra"], work, 300, env
    )
    assert search.returncode == 0, search.stderr
    assert "DlrunOptunaSweeper" in search.stdout  # Hydra found the installed plugin
