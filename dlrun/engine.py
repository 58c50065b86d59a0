"""The engine function: one configured job, whichever door started it (the command, `python -m
dlrun`, a sweep's worker process, torchrun's ranks, `dlrun.train`). Hydra hands it the composed
config; it validates, then runs the job (dlrun/run.py), or, in a multirun, a sweep job
(dlrun/sweep.py). It raises DlrunError and never exits: the doors decide how a problem ends
(dlrun/exits.py). No torch at import: dlrun/run.py is imported once a job really runs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from dlrun import interrupts, registry, sweep
from dlrun.errors import DlrunError, Interrupted

if TYPE_CHECKING:
    from dlrun.resume import ResumePlan

log = logging.getLogger("dlrun")


def is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.get().mode == RunMode.MULTIRUN


def run_config(cfg: DictConfig) -> float | None:
    """Hydra's task function: a multirun's job (its failure recorded, the sweep goes on), or
    the one run. Returns the monitored validation value (what a sweeper optimises)."""
    if is_multirun():
        return sweep.run_sweep_job(cfg, run_job)
    return run_job(cfg)


def run_job(cfg: DictConfig, plan: ResumePlan | None = None) -> float | None:
    """Validate and run one job; a sweep job's `plan` was made by sweep.run_sweep_job."""
    from dlrun.validate import validate_config

    try:
        registry.activate_for_job(cfg.get("plugins"))  # typed plugins; a sweep job's process too
        validate_config(cfg)
        registry.check_config(cfg)  # every `_target_`, before anything is imported or built
        from dlrun.run import run_job as run  # imports torch: only once a job really runs

        interrupts.release()  # all imported: a Ctrl-C held since the command started is raised
        return run(cfg, plan)
    except DlrunError as err:
        if not isinstance(err, Interrupted) and not is_multirun():  # sweeps record their own
            _put_back_a_refused_resume(refused=True)
            _record_failure(cfg, err)
        raise
    finally:
        _put_back_a_refused_resume(refused=False)  # forgets what was kept (a no-op after a refusal)


def _put_back_a_refused_resume(refused: bool) -> None:
    """A resume refused inside the job (weights that do not fit) leaves the continued folder's
    .hydra/ files and log as they were before this command (dlrun/resume.py)."""
    from hydra.core.hydra_config import HydraConfig

    from dlrun import resume

    try:
        run_dir = Path(HydraConfig.get().runtime.output_dir)
    except ValueError:  # not under Hydra: no folder was claimed
        return
    resume.put_folder_back(run_dir, refused)


def _record_failure(cfg: DictConfig, err: DlrunError) -> None:
    """A run that stopped on a config or data error leaves metrics.json (status failed, the
    error) in its folder, which Hydra made before the job started; a record the job itself wrote
    (a resumed run's, or a failure during training) is kept as it is."""
    from hydra.core.hydra_config import HydraConfig

    from dlrun.artifacts import RunArtifacts

    hc = HydraConfig.get()
    artifacts = RunArtifacts(Path(hc.runtime.output_dir))
    if artifacts.metrics_path.exists():
        return
    from dlrun.record import failed_before_training

    try:
        artifacts.write_metrics(
            failed_before_training(
                str(err),
                OmegaConf.select(cfg, "model._target_", default=""),
                OmegaConf.select(cfg, "data._target_", default=""),
                str(artifacts.run_dir),
                list(hc.overrides.task),
            )
        )
    except Exception:  # noqa: BLE001 (a full disk: the error line is printed anyway)
        log.debug("could not write the failure record", exc_info=True)
