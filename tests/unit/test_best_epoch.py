"""Which epoch is best: the monitored metric, and on a tie the lower validation loss."""

from dlrun.loop import LoopState, _ties_lower_loss


def _state(best: float, loss: float) -> LoopState:
    return LoopState(best_value=best, best_epoch=5, best_val={"accuracy": best, "loss": loss})


def test_a_tie_on_the_metric_goes_to_the_lower_validation_loss():
    state = _state(1.0, 0.40)
    assert _ties_lower_loss(1.0, {"accuracy": 1.0, "loss": 0.10}, state)
    assert not _ties_lower_loss(1.0, {"accuracy": 1.0, "loss": 0.50}, state)


def test_no_tie_no_loss_or_no_best_yet_decide_nothing():
    state = _state(1.0, 0.40)
    assert not _ties_lower_loss(0.9, {"accuracy": 0.9, "loss": 0.01}, state)  # not a tie
    assert not _ties_lower_loss(1.0, {"accuracy": 1.0}, state)  # no loss to compare
    assert not _ties_lower_loss(1.0, {"accuracy": 1.0, "loss": 0.1}, LoopState())  # first epoch
