"""The Optuna search loop (`hparams_search=optuna`): ask the study for trials, launch them as
Hydra jobs with the configured launcher (n_jobs at a time: in parallel under
hydra/launcher=joblib), tell the study how each ended.

A trial's job folder is its trial number (Hydra's job number), so a continued study
(sweep.resume=true) adds folders after the earlier ones, and a trial that was running when the
sweep stopped is launched again under its own number: its job resumes from its checkpoint.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from dlrun.errors import DlrunError
from dlrun.search import study as studies
from dlrun.search.space import search_space, trial_overrides

log = logging.getLogger("dlrun")
TrialState = optuna.trial.TrialState


class OptunaSearch:
    """One `dlrun -m hparams_search=optuna` command: n_trials more trials of the study."""

    def __init__(
        self,
        settings: dict[str, Any],
        hydra_context: HydraContext,
        task_function: TaskFunction,
        config: DictConfig,
    ) -> None:
        self.settings = {
            k: OmegaConf.to_container(v, resolve=True) if isinstance(v, DictConfig) else v
            for k, v in settings.items()
        }
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )
        self.n_jobs = max(int(self.settings.get("n_jobs") or 1), 1)
        self.failed = self.done = 0

    def run(self, arguments: list[str]) -> None:
        """n_trials more trials; a bad search setting ends the command in one line (exit 2)."""
        from dlrun.sweep import SweepStopped

        try:
            self._run(arguments)
        except DlrunError as err:
            raise SweepStopped(str(err), err.exit_code, Path(self.config.hydra.sweep.dir)) from None

    def _run(self, arguments: list[str]) -> None:
        params = [f"{k}={v}" for k, v in (self.settings.get("params") or {}).items()]
        self.space, self.fixed = search_space(params + list(arguments))
        url, name = self.settings.get("storage"), str(self.settings.get("study_name") or "dlrun")
        study = studies.open_study(self.settings, url, name)  # the existing trials, if continued
        study.sampler = studies.sampler(self.settings, len(study.trials))
        studies.pruner(self.settings)  # an unknown pruner: refused before any trial runs
        log.info(
            f"Optuna study {name!r} in {url or 'memory'}: {len(study.trials)} trials so far, "
            f"{self.settings.get('n_trials')} more; pruner {self.settings.get('pruner')}"
        )
        self._relaunch_stopped(study, url, name)
        to_go = int(self.settings.get("n_trials") or 0)
        while to_go > 0:
            trials = [_ask(study, self.space) for _ in range(min(self.n_jobs, to_go))]
            self._launch(study, trials, url, name)
            to_go -= len(trials)

    def _relaunch_stopped(self, study: optuna.Study, url: str | None, name: str) -> None:
        """Trials left running by a sweep that stopped (Ctrl-C, a kill): run them again in their
        own folders, where their jobs continue from the last checkpoint."""
        stopped = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        for trial in stopped:
            log.info(f"trial {trial.number} was running when the sweep stopped: continuing it")
            self._launch(study, [optuna.Trial(study, trial._trial_id)], url, name)

    def _launch(
        self, study: optuna.Study, trials: list[optuna.Trial], url: str | None, name: str
    ) -> None:
        jobs = [self._overrides(t, url, name) for t in trials]
        numbers = [t.number for t in trials]
        if numbers != list(range(numbers[0], numbers[0] + len(numbers))):  # another asker too
            pairs = zip(trials, jobs, strict=True)
            returns = [r for t, j in pairs for r in self._jobs([j], t.number)]
        else:
            returns = self._jobs(jobs, numbers[0])
        for trial, ret in zip(trials, returns, strict=True):
            self._tell(study, trial, ret)
        self._check_failure_rate()

    def _jobs(self, jobs: Sequence[Sequence[str]], first: int) -> Sequence[JobReturn]:
        return self.launcher.launch(jobs, initial_job_idx=first)

    def _overrides(self, trial: optuna.Trial, url: str | None, name: str) -> list[str]:
        env = [f"++hydra.job.env_set.{studies.TRIAL_KEY}={trial.number}"]
        if url:
            env += [
                f"++hydra.job.env_set.{studies.STORAGE_KEY}='{url}'",
                f"++hydra.job.env_set.{studies.STUDY_KEY}='{name}'",
            ]
        return trial_overrides(trial.params, self.fixed) + env

    def _tell(self, study: optuna.Study, trial: optuna.Trial, ret: JobReturn) -> None:
        value, status = _outcome(ret)
        self.done += 1
        if value is not None:
            study.tell(trial, value)
        elif status == "pruned":
            study.tell(trial, state=TrialState.PRUNED)
        else:
            self.failed += 1
            study.tell(trial, state=TrialState.FAIL)
            log.warning(f"trial {trial.number} {status or 'failed'}: recorded, the search goes on")

    def _check_failure_rate(self) -> None:
        limit = float(self.settings.get("max_failure_rate", 1.0))
        if self.done and self.failed / self.done > limit:
            raise DlrunError(
                f"{self.failed} of {self.done} trials failed, more than "
                f"hydra.sweeper.max_failure_rate={limit}: the search stopped",
                exit_code=1,
            )


def _ask(study: optuna.Study, space: dict[str, Any]) -> optuna.Trial:
    try:
        return study.ask(space)
    except ValueError as err:  # a continued study whose choice() lists changed
        raise DlrunError(
            f"the search space does not fit the study's earlier trials ({err}): keep each "
            "parameter's kind and choices as they were, or start a new search (without "
            "sweep.resume=true)"
        ) from None


def _outcome(ret: JobReturn) -> tuple[float | None, str | None]:
    """(the job's returned value, its metrics.json status); a job that raised has neither."""
    if ret.status is not JobStatus.COMPLETED:
        return None, "failed"
    value = ret.return_value
    status = None
    try:
        folder = Path(str(ret.hydra_cfg.hydra.runtime.output_dir))
        status = json.loads((folder / "metrics.json").read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        pass
    if value is None or status not in (None, "completed"):
        return None, status
    return float(value), status
