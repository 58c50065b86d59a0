"""dlrun/exits.py: the one line and exit code of a problem, and a refusal that crosses a process
(a parallel launcher's worker sends it back pickled)."""

from __future__ import annotations

import pickle

import pytest

from dlrun import exits
from dlrun.errors import ConfigError, Interrupted, TrainingFailed


def test_a_refusal_keeps_its_error_across_a_process_boundary():
    errors = (Interrupted("SIGTERM", 143), ConfigError("bad", exit_code=3), TrainingFailed("x"))
    for error in errors:
        back = pickle.loads(pickle.dumps(exits.Refused(error))).error
        assert type(back) is type(error) and str(back) == str(error)
        assert back.exit_code == error.exit_code
    assert pickle.loads(pickle.dumps(Interrupted("SIGINT", 130))).signal_name == "SIGINT"


def test_one_line_and_the_errors_exit_code(capsys):
    with pytest.raises(SystemExit) as exit_:
        exits.leave(ConfigError("trainer.epochs=0 is invalid"))
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "dlrun: error: trainer.epochs=0 is invalid\n"
    with pytest.raises(SystemExit) as exit_:
        exits.leave(Interrupted("SIGTERM", 143))
    assert exit_.value.code == 143 and capsys.readouterr().err.startswith("dlrun: SIGTERM received")


def test_carried_turns_a_dlrun_error_into_a_refusal_hydra_lets_through():
    def job() -> None:
        raise ConfigError("no")

    with pytest.raises(exits.Refused) as refused:
        exits.carried(job)()
    assert not isinstance(refused.value, Exception)  # Hydra's `except Exception` lets it pass
    assert str(refused.value.error) == "no"
