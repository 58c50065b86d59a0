"""Registers `hydra/sweeper=dlrun_optuna` with Hydra. Hydra imports every module under
hydra_plugins/ when it starts, so this one imports neither optuna nor torch: dlrun.search is
imported when a search really runs.

No `from __future__ import annotations` here: Hydra runs this module without entering it in
sys.modules, and dataclasses cannot resolve string annotations then; OmegaConf reads these types
to check overrides of hydra.sweeper.*."""

from dataclasses import dataclass, field
from typing import Any, Dict, Optional  # noqa: UP035 (OmegaConf's structured-config types)

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class SamplerConf:
    name: str = "tpe"  # tpe | random
    # None: a fresh seed; a number: the sampler is seeded with it plus the trials already in the
    # study, so a continued study does not replay its first trials
    seed: Optional[int] = None  # noqa: UP045


@dataclass
class DlrunOptunaSweeperConf:
    _target_: str = "hydra_plugins.dlrun_optuna_sweeper.dlrun_optuna_sweeper.DlrunOptunaSweeper"
    direction: str = "maximize"  # jobs return the monitored val metric signed: larger is better
    study_name: str = "dlrun"
    storage: Optional[str] = None  # noqa: UP045  # e.g. sqlite:///<sweep dir>/optuna.db; None keeps it in memory
    n_trials: int = 20  # trials this command runs (a continued study gets n_trials more)
    n_jobs: int = 1  # trials launched together (in parallel under hydra/launcher=joblib)
    max_failure_rate: float = 1.0  # stop the search when more of its trials than this failed
    sampler: SamplerConf = field(default_factory=SamplerConf)
    # median | percentile | hyperband | successive_halving | none
    pruner: str = "median"
    pruner_startup_trials: int = 3  # trials that finish before the pruner may stop any
    pruner_warmup_epochs: int = 2  # epochs a trial always runs before it may be pruned
    pruner_percentile: float = 50.0  # pruner=percentile: prune below this percentile
    # the search space, in Hydra's sweep syntax
    params: Optional[Dict[str, Any]] = None  # noqa: UP006, UP045


ConfigStore.instance().store(
    group="hydra/sweeper", name="dlrun_optuna", node=DlrunOptunaSweeperConf, provider="dlrun"
)


class DlrunOptunaSweeper(Sweeper):
    """Asks Optuna for trials, launches them with the configured launcher, tells Optuna how each
    ended (complete, pruned or failed). See dlrun.search.sweeper."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from dlrun.search import require_optuna

        require_optuna(config.hydra.sweep.dir)
        from dlrun.search.sweeper import OptunaSearch

        self.search = OptunaSearch(self.settings, hydra_context, task_function, config)

    def sweep(self, arguments: list[str]) -> None:
        self.search.run(arguments)
