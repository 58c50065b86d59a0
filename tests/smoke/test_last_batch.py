"""The last training batch never breaks a model: a one-sample batch under BatchNorm is dropped
(trainer.drop_last=auto), and the choice is in the log and metrics.json."""

import pytest

from dlrun.loop import samples_per_epoch
from tests.conftest import read_metrics, run_dirs


def test_gan_on_digits_with_a_one_sample_last_batch_trains(dlrun, tmp_path):
    # digits as images: 1,294 training images; 1,294 % 431 = 1 (BatchNorm1d fails on one sample)
    proc = dlrun(
        "model=gan",
        "trainer.batch_size=431",
        "trainer.epochs=1",
        "trainer.progress=false",
        "plots=false",
    )
    assert (
        "trainer.drop_last=auto: the last training batch of each epoch would hold 1" in proc.stdout
    )
    m = read_metrics(run_dirs(tmp_path)[0])
    assert m["status"] == "completed"
    assert m["last_batch"] == {"drop_last": "auto", "dropped_per_epoch": 1}


@pytest.mark.parametrize(
    "n,batch,drop,used",
    [
        (1293, 68, "auto", 1292),
        (1294, 68, "auto", 1294),
        (1294, 68, True, 1292),
        (1293, 68, False, 1293),
        (1292, 68, True, 1292),
    ],
)
def test_which_samples_an_epoch_uses(n, batch, drop, used):
    assert samples_per_epoch(n, batch, drop) == used
