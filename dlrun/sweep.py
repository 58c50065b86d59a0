"""Multirun plumbing: per-job skip/resume (as dlrun.resume.plan decides) and failure handling,
the sweep-folder resolver, GPU pinning for parallel launchers, and the Hydra callback that writes
the sweep summary.

Hydra's sweepers and launchers do the scheduling; this module only decides what one job does with
its folder and what the sweep reports at the end. It must not import torch (it runs in the
sweep's parent process and at config-composition time).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from dlrun import exits, interrupts, resume, safe_files
from dlrun.artifacts import RunArtifacts
from dlrun.errors import DlrunError, Interrupted, TrialPruned
from dlrun.summary import Summary, summarize, visible_overrides

log = logging.getLogger("dlrun")

MARKER = "dlrun_sweep.json"  # written into every sweep folder: the command's overrides


class SweepStopped(SystemExit):
    """Ends the whole sweep (fail_fast, a signal, a job folder that holds another job).

    A SystemExit, so that Hydra's launchers do not record it as one more failed job: it reaches
    dlrun.cli.main, which writes the summary and prints `message` as one line.
    """

    def __init__(self, message: str, exit_code: int, sweep_dir: Path) -> None:
        super().__init__(exit_code)
        self.message, self.sweep_dir = message, Path(sweep_dir)

    def __reduce__(self) -> tuple:  # parallel launchers send it back from a worker process
        return (SweepStopped, (self.message, self.code, str(self.sweep_dir)))


class SweepStoppedInJob(CompactHydraException):
    """SweepStopped, raised in a submitit job's own process. submitit records a job's end only
    when it returns or raises an Exception: after a SystemExit the launcher waits 15 s for a
    result that never comes, then fails with a traceback. Hydra records this one as the job's
    failure, and the sweep's process prints it as one line when it reads the job's result."""


# --- the sweep folder -----------------------------------------------------------------------
def find_previous_sweep(root: Path, overrides: list[str]) -> Path | None:
    """The newest sweep folder under `root` (up to two levels down) run with the same overrides."""
    want = sorted(visible_overrides(overrides))
    matches = []
    for pattern in (MARKER, f"*/{MARKER}", f"*/*/{MARKER}"):
        for marker in Path(root).glob(pattern):
            try:
                seen = json.loads(marker.read_text()).get("overrides", [])
            except (OSError, json.JSONDecodeError, AttributeError):
                continue
            if sorted(visible_overrides(seen)) == want:
                matches.append((marker.stat().st_mtime, marker.parent))
    return max(matches)[1] if matches else None


def sweep_dir(root: str, fresh: str, resume: bool, overrides: Any) -> str:
    """`hydra.sweep.dir` (the `dlrun_sweep_dir` resolver, dlrun/hydra_ext.py): root/fresh, or
    with sweep.resume=true the newest earlier sweep folder of the same command. The resolver is
    cached on its literal arguments, so every job of a sweep (whose own overrides differ) gets
    the folder the parent resolved."""
    if resume:
        previous = find_previous_sweep(Path(root), [str(o) for o in overrides or []])
        if previous is not None:
            return str(previous)
    return f"{root}/{fresh}"


# --- GPU pinning for parallel launchers -----------------------------------------------------
def gpu_for_job(job_num: int, gpus: list[str]) -> str:
    """Round-robin: job n runs on the (n mod count)-th visible GPU."""
    return gpus[job_num % len(gpus)]


def visible_gpus(environ: MutableMapping[str, str]) -> list[str]:
    """CUDA_VISIBLE_DEVICES if set, else the GPUs nvidia-smi lists (no CUDA initialisation)."""
    if "CUDA_VISIBLE_DEVICES" in environ:
        return [g.strip() for g in environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i in range(sum(row.startswith("GPU ") for row in out.splitlines()))]


class GpuPinner:
    """Pins a worker process to one GPU via CUDA_VISIBLE_DEVICES, before CUDA is initialised.

    CUDA reads the variable once per process, so the first job in a process decides and later
    jobs in that (reused) worker keep its GPU: with as many workers as GPUs, one job per GPU.
    """

    def __init__(self) -> None:
        self.pinned: str | None = None

    def pin(self, job_num: int, environ: MutableMapping[str, str], gpus: list[str]) -> str | None:
        if self.pinned is None and len(gpus) > 1:
            self.pinned = gpu_for_job(job_num, gpus)
            environ["CUDA_VISIBLE_DEVICES"] = self.pinned
        return self.pinned


_PINNER = GpuPinner()


def _parallel_launcher() -> bool:
    return "joblib" in str(OmegaConf.select(HydraConfig.get(), "launcher._target_", default=""))


# --- one job ----------------------------------------------------------------------------------
def objective(record: dict[str, Any] | None) -> float | None:
    """What a job returns to its sweeper: the best monitored val metric, signed so that larger is
    better (negated for min-metrics such as loss): `hparams_search=optuna` always maximises it.
    None for a job without a value (Optuna records the trial as failed and goes on)."""
    if not record or record.get("status") != "completed":
        return None
    monitor = record.get("monitor") or {}
    value = (record.get("best_val") or {}).get(monitor.get("metric"))
    if value is None:
        return None
    return float(value) if monitor.get("mode") == "max" else -float(value)


def _check_same_job(record: dict[str, Any], overrides: list[str], folder: Path) -> None:
    before = sorted(visible_overrides(record.get("overrides") or []))
    if before != sorted(visible_overrides(overrides)):
        raise SweepStopped(
            f"job folder {folder} already holds another job ({' '.join(before) or 'defaults'}): "
            "give the sweep a new hydra.sweep.dir",
            2,
            folder.parent,
        )


def _pin_gpu(cfg: DictConfig, job_num: int, job: str) -> None:
    if _parallel_launcher() and str(cfg.device.name) in ("auto", "cuda"):
        gpu = _PINNER.pin(job_num, os.environ, visible_gpus(os.environ))
        if gpu is not None:
            log.info(f"{job} pinned to GPU {gpu} (CUDA_VISIBLE_DEVICES, process {os.getpid()})")


def run_sweep_job(
    cfg: DictConfig, run: Callable[[DictConfig, resume.ResumePlan], Any]
) -> float | None:
    """One multirun job: skip it if done, resume it if unfinished (resume.plan decides from its
    folder), record a failure and go on."""
    try:
        return _run_sweep_job(cfg, run)
    except SweepStopped as stop:
        if "submitit" not in str(OmegaConf.select(HydraConfig.get(), "launcher._target_")):
            raise
        raise SweepStoppedInJob(f"dlrun: error: {stop.message}") from None


def _run_sweep_job(
    cfg: DictConfig, run: Callable[[DictConfig, resume.ResumePlan], Any]
) -> float | None:
    hc = HydraConfig.get()
    artifacts = RunArtifacts(Path(hc.runtime.output_dir))
    overrides, job = list(hc.overrides.task), f"job {hc.job.num}"
    sweep_dir = Path(hc.sweep.dir)
    record = artifacts.read_metrics()
    if record is not None:
        _check_same_job(record, overrides, artifacts.run_dir)
    try:
        plan = resume.plan(cfg.get("resume"), artifacts.run_dir, job_record=record)
        if plan.why:
            log.info(f"{job} {plan.why}")
        if plan.action == "skip":
            return objective(plan.record)
        _pin_gpu(cfg, hc.job.num, job)
        run(cfg, plan)
    except Interrupted as err:
        raise SweepStopped(
            f"{err.signal_name} received: {job} saved a checkpoint and the sweep stopped; "
            "continue it with the same command plus sweep.resume=true",
            err.exit_code,
            sweep_dir,
        ) from None
    except TrialPruned:  # recorded as pruned by the run; the Optuna sweeper tells the study
        return None
    except Exception as err:  # a failed job must not end the sweep (unless fail_fast)
        message = (
            str(err).splitlines()[0]
            if isinstance(err, DlrunError)
            else f"{type(err).__name__}: {err}"
        )
        if not isinstance(err, DlrunError):
            log.exception(f"{job} crashed")  # the traceback goes to the job's dlrun.log
        artifacts.record_failure(message, overrides)
        log.error(f"{job} failed: {message}")
        if OmegaConf.select(cfg, "sweep.fail_fast", default=False):
            raise SweepStopped(
                f"{job} failed and sweep.fail_fast=true stopped the sweep: {message}", 1, sweep_dir
            ) from None
        return None
    return objective(artifacts.read_metrics())


# --- the end of a sweep -----------------------------------------------------------------------
_OUTCOME: dict[str, Any] = {}  # the parent process's sweep folder and last summary (exit code)


def forget_outcome() -> None:
    """Start a new command with no sweep remembered (several commands in one process)."""
    _OUTCOME.clear()


def finish(sweep_dir: Path, show: bool = True) -> Summary | None:
    """Write the sweep's summary.csv/.md and print the table; remember it for the exit code."""
    if not Path(sweep_dir).is_dir():
        return None
    summary = summarize(Path(sweep_dir))
    _OUTCOME["last"] = summary
    if show:
        print(summary.markdown, end="", flush=True)
        print(f"wrote {summary.md_path} and {summary.md_path.with_suffix('.csv')}", flush=True)
    return summary


def started_sweep() -> Path | None:
    """The folder of the sweep this process started, if any (to summarise a crashed sweeper)."""
    return _OUTCOME.get("dir")


def failure_line() -> str | None:
    """One line naming how many jobs did not complete, or None when all did."""
    summary = _OUTCOME.get("last")
    if summary is None or not summary.failed:
        return None
    return (
        f"{len(summary.failed)} of {len(summary.rows)} jobs did not complete "
        f"({', '.join(sorted({r.status for r in summary.failed}))}); summary: {summary.md_path}"
    )


class SweepCallback(Callback):
    """Registered in conf/config.yaml (hydra.callbacks): marks the sweep folder with its command,
    refreshes the summary after each job and writes and prints it at the end."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # The sweep's own process may never run a job (joblib, submitit): Ctrl-C works from here.
        interrupts.release()
        sweep_dir = Path(config.hydra.sweep.dir)
        try:  # a continued sweep folder with a link planted in it: refused before any write
            safe_files.refuse_links(sweep_dir, "hydra.sweep.dir")
        except DlrunError as err:  # through Hydra to the door (dlrun/exits.py)
            exits.refuse(err)
        resumed = (sweep_dir / MARKER).is_file()
        safe_files.make_dirs(sweep_dir)  # Optuna's SQLite file goes here first
        marker = {
            "overrides": list(config.hydra.overrides.task),
            "argv": sys.argv[1:],
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        safe_files.write_atomic(sweep_dir / MARKER, json.dumps(marker, indent=2) + "\n")
        _OUTCOME["dir"] = sweep_dir
        print(f"{'resuming' if resumed else 'sweep'} folder: {sweep_dir}", flush=True)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if config.hydra.mode == RunMode.MULTIRUN:
            try:  # a partial summary, so a sweep killed halfway still has one
                summarize(Path(config.hydra.sweep.dir))
            except OSError as err:
                log.warning(f"could not refresh the sweep summary: {err}")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        finish(Path(config.hydra.sweep.dir))
