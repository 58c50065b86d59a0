"""Shared test helpers: run the real `dlrun` command (in-process, or in a subprocess where a process
is the point), compose configs in-process."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# One torch thread in every test process and every dlrun it starts (read when torch loads, so
# before any import of it): tests run in parallel workers on few cores, tiny models gain nothing
# from more, and runs compared bit for bit must use the same thread count in and out of process.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def _temporary_folders_in_memory(root: str = "/dev/shm", room: int = 8 * 2**30) -> None:
    """Test folders on tmpfs where it has room and the user set no TMPDIR: every run fsyncs its
    checkpoints and records, and on ext4 those waits took ~20% of the suite's time (five test
    files: 54.6 s against 44.0 s). tmpfs keeps real files, links, permissions and no-follow
    opens; a container's small /dev/shm (64 MB) keeps the system's temporary folder."""
    if "TMPDIR" in os.environ or not (os.path.isdir(root) and os.access(root, os.W_OK)):
        return
    stat = os.statvfs(root)
    if stat.f_bavail * stat.f_frsize >= room:
        # torch.compile's cache stays where inductor keeps it by default (a lasting cache, not
        # test folders that go away); only its precompiled headers (~150 MB) follow TMPDIR
        cache = Path(tempfile.gettempdir()) / f"torchinductor_{getpass.getuser()}"
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache))
        os.environ["TMPDIR"] = root  # read by this process's tempfile and every dlrun it starts
        tempfile.tempdir = None


_temporary_folders_in_memory()
# torch.compile's inductor compiles in this process: its default pool of compile workers (one per
# CPU, each importing torch) costs more than the tests' tiny graphs take to compile
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

from tests.inprocess import run_in_process  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first: a 60-second test that a worker starts last keeps the suite waiting on it
    while the other worker idles (xdist workers take tests in this order)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: else as found


def dlrun_env(**extra: str) -> dict[str, str]:
    """The environment for a dlrun subprocess: this checkout's package first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("HYDRA_FULL_ERROR", None)
    env.update(extra)
    return env


def without_plots_unless_asked(args: tuple[str, ...]) -> tuple[str, ...]:
    """Runs in tests skip plots/ (matplotlib is ~1-2 s a run, most of a small run's time) unless
    the test asks for them with plots=true: tests/*/test_observe.py test the plots themselves."""
    info = {"--help", "-h", "--cfg", "-c", "--info", "--hydra-help", "--shell-completion"}
    if any(a.startswith("plots=") for a in args) or info & set(args):
        return args
    return (*args, "plots=false")


# Failpoints that SIGKILL (or hold forever) the process they fire in: never inside the test
# process.
KILLING_FAILPOINTS = ("kill_after_batch", "checkpoint_crash", "hold_after_batch")


def run_dlrun(
    *args: str,
    cwd: Path,
    timeout: float = 240,
    process: bool = False,
    failpoints: str | None = None,
    checksums: bool = True,
    **env: str,
) -> subprocess.CompletedProcess:
    """`dlrun ARGS` in `cwd` (outputs land in cwd/outputs): in this process by default (see
    tests/inprocess.py), in a subprocess with `process=True` where a process is the point.
    `failpoints` arms dlrun.faults; `checksums=False` accepts the tests' tiny dataset files."""
    args = without_plots_unless_asked(args)
    # a killing failpoint, or an environment only a new interpreter reads (PYTHONPATH): a process
    process = process or "PYTHONPATH" in env
    if not process and not any(name in (failpoints or "") for name in KILLING_FAILPOINTS):
        return run_in_process(args, cwd, env, failpoints=failpoints, checksums=checksums)
    switches = [f"--test-failpoints={failpoints}"] if failpoints else []
    switches += [] if checksums else ["--test-no-checksums"]
    command = ["tests.proc", *switches] if switches else ["dlrun"]
    return subprocess.run(
        [sys.executable, "-m", *command, *args],
        cwd=cwd,
        env=dlrun_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_command(
    command: list[str], cwd: Path, timeout: float = 180, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Any command (a console script, `python -c ...`) as its own process, in the tests' env
    (or `env` alone: an installed wheel without this checkout on the path)."""
    return subprocess.run(
        command, cwd=cwd, env=env or dlrun_env(), capture_output=True, text=True, timeout=timeout
    )


def run_dirs(root: Path) -> list[Path]:
    """Every run folder (one holding metrics.json) under root/outputs, oldest first."""
    found = (root / "outputs").rglob("metrics.json")
    return sorted(
        (p.parent for p in found if not {"mlruns", "wandb"} & set(p.parts)),  # loggers' copies
        key=lambda p: p.stat().st_mtime,
    )


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture
def dlrun(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Run dlrun in a fresh temporary folder (in-process unless `process=True`, see run_dlrun);
    fails the test with its output on a non-zero exit unless `expect_fail=True`."""

    def _run(*args: str, expect_fail: bool = False, **options: Any) -> subprocess.CompletedProcess:
        proc = run_dlrun(*args, cwd=tmp_path, **options)
        if not expect_fail and proc.returncode != 0:
            pytest.fail(
                f"dlrun {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return _run


@pytest.fixture
def compose() -> Callable[..., object]:
    """Compose the real config tree with overrides, in-process (no run)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from dlrun.cli import config_dir

    def _compose(*overrides: str):
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            return hydra_compose(config_name="config", overrides=list(overrides))

    return _compose


# --- real file-system conditions: a full disk, a read-only folder ---------------------------
def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Callable[[int], Path]:
    """small_disk(kib): a real tmpfs of that size, mounted under tmp_path (skips where mounting is
    not allowed, e.g. without root); unmounted after the test."""
    mounted: list[Path] = []

    def _make(kib: int) -> Path:
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        if not _mount("-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(folder)):
            pytest.skip("cannot mount a small tmpfs here (needs root)")
        mounted.append(folder)
        return folder

    yield _make
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def read_only() -> Callable[[Path], Path]:
    """read_only(folder): the same files, read-only for this process: a read-only bind mount as
    root (who ignores permission bits), else chmod; undone after the test."""
    undo: list[Callable[[], object]] = []

    def _make(folder: Path) -> Path:
        if os.geteuid() != 0:
            folder.chmod(0o555)
            undo.append(lambda: folder.chmod(0o755))
            return folder
        if not (
            _mount("--bind", str(folder), str(folder))
            and _mount("-o", "remount,ro,bind", str(folder))
        ):
            pytest.skip("cannot make a read-only bind mount here")
        undo.append(lambda: subprocess.run(["umount", "-l", str(folder)], capture_output=True))
        return folder

    yield _make
    for step in undo:
        step()


def start_dlrun(command: list[str], cwd: Path) -> subprocess.Popen:
    """A real command (`[python, -m, dlrun, ...]`, or torchrun) left running in the background,
    without plots unless asked (see run_dlrun): stdout dropped, stderr kept for the test."""
    return subprocess.Popen(
        list(without_plots_unless_asked(tuple(command))),
        cwd=cwd,
        env=dlrun_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_file(root: Path, pattern: str, proc: subprocess.Popen, limit_s: float = 120) -> Path:
    """The first file under `root` matching `pattern`, waited for while `proc` runs; the test
    fails with the process's stderr if it ends first, or when `limit_s` passes."""
    import time

    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        found = sorted(root.glob(pattern))
        if found:
            return found[0]
        if proc.poll() is not None:
            pytest.fail(f"the command ended before {pattern} appeared:\n{proc.communicate()[1]}")
        time.sleep(0.2)
    pytest.fail(f"no {pattern} under {root} after {limit_s:.0f} s")
