"""dlrun's hyper-parameter search on Optuna: the search space in Hydra's sweep syntax (space),
the study, sampler and pruner (study), the sweep loop (sweeper) and the per-epoch report a
trial makes so that poor trials stop early (pruning). Only a search imports optuna."""

from __future__ import annotations

MIN_OPTUNA = 4


def require_optuna(sweep_dir: str) -> None:
    """Stop the command in one line (exit 2) where Optuna is missing or older than 4."""
    from pathlib import Path

    from dlrun.sweep import SweepStopped

    try:
        import optuna
    except ImportError:
        found = None
    else:
        found = optuna.__version__
    if found is None or int(found.split(".")[0]) < MIN_OPTUNA:
        have = f"optuna {found} is installed" if found else "optuna is not installed"
        raise SweepStopped(
            f"hparams_search=optuna needs optuna>={MIN_OPTUNA} and sqlalchemy>=2 ({have}): "
            "pip install 'dlrun[search]'",
            2,
            Path(sweep_dir),
        )
