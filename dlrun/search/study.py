"""The study: its storage (SQLite in the sweep folder), sampler and pruner, made the same way in
the sweep's process (which asks and tells) and in every trial (which reports each epoch and asks
whether to stop), so both see the same pruner."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

import optuna
import sqlalchemy

from dlrun.errors import ConfigError

# What the sweeper hands each trial, through `hydra.job.env_set` (the one per-job setting Hydra
# carries to any launcher's worker without it becoming a task override of the run).
TRIAL_KEY = "DLRUN_OPTUNA_TRIAL"
STORAGE_KEY = "DLRUN_OPTUNA_STORAGE"
STUDY_KEY = "DLRUN_OPTUNA_STUDY"

PRUNERS = ("median", "percentile", "hyperband", "successive_halving", "none")
SAMPLERS = ("tpe", "random")


def storage(url: str | None) -> optuna.storages.BaseStorage | None:
    """The study's storage. SQLite waits for a lock instead of failing at once (trials running
    in parallel under hydra/launcher=joblib write their epoch reports to the same file), and
    does not fsync every commit: a trial reports every epoch, and a synced report cost ~30 ms
    here, as much as an epoch of the default MLP on digits (unsynced: ~2 ms). A process that
    dies loses nothing that way; only an OS crash could lose the last reports."""
    if not url:
        return None
    parsed = sqlalchemy.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return optuna.storages.RDBStorage(url)

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(parsed.database, timeout=60, check_same_thread=False)
        connection.execute("PRAGMA synchronous=OFF")
        return connection

    return optuna.storages.RDBStorage(url, engine_kwargs={"creator": connect})


def pruner(settings: Mapping[str, Any]) -> optuna.pruners.BasePruner:
    """hydra.sweeper.pruner: median (default), percentile, hyperband, successive_halving, none."""
    name = str(settings.get("pruner") or "none").lower()
    startup = int(settings.get("pruner_startup_trials", 5))
    warmup = int(settings.get("pruner_warmup_epochs", 0))
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)
    if name == "percentile":
        percentile = float(settings.get("pruner_percentile", 50.0))
        return optuna.pruners.PercentilePruner(
            percentile, n_startup_trials=startup, n_warmup_steps=warmup
        )
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(warmup, 1))
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(warmup, 1))
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"hydra.sweeper.pruner={name!r} is unknown: use one of {', '.join(PRUNERS)}")


def sampler(settings: Mapping[str, Any], trials_so_far: int) -> optuna.samplers.BaseSampler:
    """hydra.sweeper.sampler.name (tpe, random) and .seed. A seeded sampler of a continued study
    is seeded with seed + the trials it already holds: the same seed again would replay them."""
    conf = settings.get("sampler") or {}
    name = str(conf.get("name", "tpe")).lower()
    seed = conf.get("seed")
    seed = None if seed is None else int(seed) + trials_so_far
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError(
        f"hydra.sweeper.sampler.name={name!r} is unknown: use one of {', '.join(SAMPLERS)}"
    )


def direction(settings: Mapping[str, Any]) -> str:
    value = str(settings.get("direction", "maximize")).lower()
    if value not in ("maximize", "minimize"):
        raise ConfigError(f"hydra.sweeper.direction={value!r} is invalid: use maximize or minimize")
    return value


def open_study(
    settings: Mapping[str, Any], url: str | None, name: str, sampler_: Any = None
) -> optuna.Study:
    """The study `name` in `url`, created if new, with the configured pruner."""
    return optuna.create_study(
        study_name=name,
        storage=storage(url),
        sampler=sampler_,
        pruner=pruner(settings),
        direction=direction(settings),
        load_if_exists=True,
    )


def load(settings: Mapping[str, Any], url: str, name: str) -> optuna.Study:
    """The existing study (in a trial's job), with the configured pruner."""
    return optuna.load_study(study_name=name, storage=storage(url), pruner=pruner(settings))


def trial(study: optuna.Study, number: int) -> optuna.Trial:
    """The running trial `number` of `study`, to report to from its job."""
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    return optuna.Trial(study, trial_id)
