"""Real tables through the real command: task detection, target units, the saved preprocessing."""

import torch

from dlrun.data.table_prep import TablePreprocessing
from tests.conftest import read_metrics, run_dirs
from tests.unit.test_table_prep import house_rows, write_csv

SHORT = ("trainer.progress=false", "plots=false")


def test_regression_table_trains_scaled_and_reports_in_the_targets_units(dlrun, tmp_path):
    write_csv(tmp_path / "h.csv", ["area", "city", "price"], house_rows(400, 0))
    proc = dlrun("data=csv", "data.path=h.csv", "data.target=price", "trainer.epochs=15", *SHORT)
    assert "target 'price' read as regression" in proc.stdout
    (run,) = run_dirs(tmp_path)
    m = read_metrics(run)
    # prices spread ~550 around ~5,500 with noise 40: a model that learned them, in price units
    assert m["task"] == "regression" and m["test"]["r2"] > 0.9, m["test"]
    assert 15 < m["test"]["mae"] < 200 and 15 < m["test"]["rmse"] < 250, m["test"]
    state = torch.load(run / "checkpoints" / "best.pt", weights_only=True)["data_state"]["table"]
    prep = TablePreprocessing.from_state(state)
    assert (
        prep.categories == {"city": ["bergen", "oslo", "tromso"]}
        and 5000 < prep.target_mean[0] < 6000
    )
    # eval from the checkpoint encodes with the saved statistics: the same test scores
    dlrun("mode=eval", f"ckpt={run}", "hydra.run.dir=eval_run")
    assert read_metrics(tmp_path / "eval_run")["test"]["r2"] == m["test"]["r2"]
