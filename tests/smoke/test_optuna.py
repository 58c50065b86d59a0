"""`hparams_search=optuna` through the real command: dlrun's own sweeper on a current Optuna,
the study in SQLite in the sweep folder, per-epoch pruning, continued studies, parallel trials."""

import csv
import json

import pytest

from tests.conftest import read_metrics
from tests.smoke.test_sweeps import sweep_dirs

optuna = pytest.importorskip("optuna", minversion="4")

SEARCH = ["-m", "hparams_search=optuna", "trainer.progress=false"]
# one trial that must finish before the pruner may stop another; any epoch may be the last
PRUNE_NOW = ["hydra.sweeper.pruner_startup_trials=1", "hydra.sweeper.pruner_warmup_epochs=0"]


def study(sweep):
    return optuna.load_study(study_name="dlrun", storage=f"sqlite:///{sweep / 'optuna.db'}")


def test_search_config_composes_with_dlruns_optuna_sweeper():
    from hydra import compose, initialize_config_dir

    from dlrun.cli import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("config", ["hparams_search=optuna"], return_hydra_config=True)
    assert cfg.trainer.epochs == "auto"  # only hydra.* changes: the search is a sweeper setting
    assert cfg.hydra.sweeper._target_.endswith("DlrunOptunaSweeper")
    assert cfg.hydra.sweeper.pruner == "median"


@pytest.mark.slow
def test_optuna_study_in_the_sweep_folder_continues_where_it_stopped(dlrun, tmp_path):
    proc = dlrun(*SEARCH, "trainer.epochs=1", "hydra.sweeper.n_trials=3")
    (sweep,) = sweep_dirs(tmp_path)
    trials = study(sweep).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert len(rows) == 3 and all("optimizer.lr=" in r["overrides"] for r in rows)
    # jobs return the val accuracy (a max-metric) as is, so the study's best is the summary's best
    assert study(sweep).best_value == pytest.approx(float(rows[0]["val"]), abs=1e-4)
    best = study(sweep).best_trial
    assert rows[0]["job"] == str(best.number)  # a trial's folder is its number
    assert "**Best**" in proc.stdout

    dlrun(*SEARCH, "trainer.epochs=1", "hydra.sweeper.n_trials=1", "sweep.resume=true")
    assert sweep_dirs(tmp_path) == [sweep]
    assert [t.number for t in study(sweep).trials] == [0, 1, 2, 3]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1", "2", "3"]
    assert len(list(csv.DictReader((sweep / "summary.csv").open()))) == 4


@pytest.mark.slow
def test_a_poor_trial_is_pruned_recorded_and_its_study_continues(dlrun, tmp_path):
    sweep = tmp_path / "search"
    where = [*SEARCH, f"hydra.sweep.dir={sweep}", "trainer.epochs=4", *PRUNE_NOW]
    dlrun(*where, "optimizer.lr=interval(0.05,0.05)", "hydra.sweeper.n_trials=1")
    # lr=1e-6 learns nothing: behind the first trial at epoch 1, so the median pruner stops it
    poor = [*where, "optimizer.lr=interval(1e-6,1e-6)", "hydra.sweeper.n_trials=1"]
    proc = dlrun(*poor)  # pruned is not a failure: exit 0
    trials = study(sweep).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED"]
    assert len(trials[0].intermediate_values) == 4  # one report per epoch
    assert list(trials[1].intermediate_values) == [1]
    record = read_metrics(sweep / "1")
    assert record["status"] == "pruned" and record["epochs_run"] == 1
    assert "pruned by the median pruner after epoch 1" in record["error"]
    assert "1 completed, 1 pruned" in proc.stdout
    assert "| pruned |" in (sweep / "summary.md").read_text()

    # the same command again continues the study that holds a pruned trial
    dlrun(*poor)
    assert [t.state.name for t in study(sweep).trials] == ["COMPLETE", "PRUNED", "PRUNED"]
    assert read_metrics(sweep / "2")["status"] == "pruned"


@pytest.mark.slow
def test_pruner_none_runs_every_trial_to_its_end(dlrun, tmp_path):
    sweep = tmp_path / "search"
    where = [*SEARCH, f"hydra.sweep.dir={sweep}", "trainer.epochs=2", *PRUNE_NOW]
    where.append("hydra.sweeper.n_trials=1")
    dlrun(*where, "optimizer.lr=interval(0.05,0.05)")
    dlrun(*where, "optimizer.lr=interval(1e-6,1e-6)", "hydra.sweeper.pruner=none")
    assert [t.state.name for t in study(sweep).trials] == ["COMPLETE", "COMPLETE"]


@pytest.mark.slow
def test_parallel_trials_under_joblib_and_a_failed_trial_is_recorded(dlrun, tmp_path):
    proc = dlrun(
        *SEARCH,
        "trainer.epochs=2",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.sampler.name=random",
        "optimizer.lr=choice(0.05,-1)",
        expect_fail=True,
    )
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout
    (sweep,) = sweep_dirs(tmp_path)
    trials = study(sweep).trials
    assert len(trials) == 4
    for trial in trials:  # a failed trial is recorded and the search went on
        want = "FAIL" if trial.params["optimizer.lr"] == -1 else "COMPLETE"
        assert trial.state.name == want
        status = json.loads((sweep / str(trial.number) / "metrics.json").read_text())["status"]
        assert status == ("failed" if want == "FAIL" else "completed")
    assert proc.returncode == (1 if any(t.state.name == "FAIL" for t in trials) else 0)


def test_an_unknown_pruner_is_one_line(dlrun):
    proc = dlrun(*SEARCH, "hydra.sweeper.pruner=medain", expect_fail=True)
    assert proc.returncode == 2
    assert "hydra.sweeper.pruner='medain' is unknown" in proc.stderr


@pytest.mark.slow
def test_a_trial_left_running_is_run_again_under_its_number(dlrun, tmp_path):
    sweep = tmp_path / "search"
    sweep.mkdir()
    storage = f"sqlite:///{sweep / 'optuna.db'}"
    stale = optuna.create_study(study_name="dlrun", storage=storage, direction="maximize")
    space = {"optimizer.lr": optuna.distributions.FloatDistribution(0.01, 0.01, log=True)}
    stale.ask(space)  # as a sweep killed mid-trial leaves it: RUNNING, never told
    dlrun(*SEARCH, f"hydra.sweep.dir={sweep}", "trainer.epochs=1", "hydra.sweeper.n_trials=1")
    trials = study(sweep).trials
    assert [(t.number, t.state.name) for t in trials] == [(0, "COMPLETE"), (1, "COMPLETE")]
    assert "optimizer.lr=0.01" in read_metrics(sweep / "0")["overrides"]
    assert trials[0].value == pytest.approx(read_metrics(sweep / "0")["best_val"]["accuracy"])
