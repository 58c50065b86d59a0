"""A trial's side of pruning: after every epoch, report the monitored validation metric to the
study and stop the run if the pruner says so (a hook of the run, dlrun/hooks.py).

Active only in a job that dlrun's Optuna sweeper launched with a stored study; importing this
module imports no optuna.
"""

from __future__ import annotations

import logging
from typing import Any

from dlrun.errors import TrialPruned

log = logging.getLogger("dlrun")


class TrialReporter:
    """A hook: at each epoch's end, reports `val_<metric>` (signed so that larger is better, as
    the study maximises) at step = epoch. When the study's pruner says the trial should stop, it
    stops training as early stopping does (the epoch's checkpoint is still written), and at the
    fit's end raises TrialPruned, which the run records as `pruned` instead of testing."""

    def __init__(self, trial: Any, metric: str, mode: str, pruner: str) -> None:
        self.trial, self.key, self.pruner = trial, f"val_{metric}", pruner
        self.sign = 1.0 if mode == "max" else -1.0
        self.pruned: str | None = None

    def on_epoch_end(self, ctx: Any) -> None:
        value = ctx.metrics.get(self.key)
        if value is None:
            return
        self.trial.report(self.sign * float(value), ctx.epoch)
        if self.trial.should_prune():
            self.pruned = (
                f"pruned by the {self.pruner} pruner after epoch {ctx.epoch}: "
                f"{self.key} {float(value):.4g} is behind the other trials at that epoch"
            )
            ctx.stop(self.pruned)

    def on_fit_end(self, ctx: Any) -> None:
        if self.pruned:
            raise TrialPruned(self.pruned)


def trial_reporter(monitor: dict[str, str]) -> TrialReporter | None:
    """The reporter for this job's trial, or None outside a stored Optuna study."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    env = hc.job.get("env_set") or {}
    from dlrun.search.study import STORAGE_KEY, STUDY_KEY, TRIAL_KEY

    if TRIAL_KEY not in env or STORAGE_KEY not in env:
        return None
    from omegaconf import OmegaConf

    from dlrun.search import study as studies

    settings = OmegaConf.to_container(hc.sweeper, resolve=True)
    if str(settings.get("pruner") or "none").lower() == "none":
        return None  # nothing to report to: the sweeper records the final value
    study = studies.load(settings, str(env[STORAGE_KEY]), str(env[STUDY_KEY]))
    trial = studies.trial(study, int(env[TRIAL_KEY]))
    return TrialReporter(trial, monitor["metric"], monitor["mode"], str(settings["pruner"]))
