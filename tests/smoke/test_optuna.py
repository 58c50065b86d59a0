"""`hparams_search=optuna` through the real command: a 3-trial study of 1-epoch runs, continued."""

import csv

import pytest

from tests.smoke.test_sweeps import sweep_dirs

SEARCH = ["-m", "hparams_search=optuna", "trainer.epochs=1", "trainer.progress=false"]


def test_search_config_composes_with_the_optuna_sweeper(compose):
    cfg = compose("hparams_search=optuna")
    assert (
        cfg.trainer.epochs == "auto"
    )  # only hydra.* changes: the search itself is a sweeper setting


@pytest.mark.slow
def test_optuna_study_in_the_sweep_folder_continues_where_it_stopped(dlrun, tmp_path):
    optuna = pytest.importorskip("optuna")
    proc = dlrun(*SEARCH, "hydra.sweeper.n_trials=3")
    (sweep,) = sweep_dirs(tmp_path)
    storage = f"sqlite:///{sweep / 'optuna.db'}"
    study = optuna.load_study(study_name="dlrun", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert len(rows) == 3 and all("optimizer.lr=" in r["overrides"] for r in rows)
    # jobs return the val accuracy (a max-metric) as is, so the study's best is the summary's best
    assert study.best_value == pytest.approx(float(rows[0]["val"]), abs=1e-4)
    best = study.best_trial.params
    md = (sweep / "summary.md").read_text()
    assert f"optimizer.lr={best['optimizer.lr']}" in md.split("## Runs")[0]  # on the Best line
    assert "**Best**" in proc.stdout

    dlrun(*SEARCH, "hydra.sweeper.n_trials=1", "sweep.resume=true")
    assert sweep_dirs(tmp_path) == [sweep]
    assert len(optuna.load_study(study_name="dlrun", storage=storage).trials) == 4
    assert len(list(csv.DictReader((sweep / "summary.csv").open()))) == 4
