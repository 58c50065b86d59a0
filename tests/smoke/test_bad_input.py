"""Bad input ends with a short error naming the problem, a non-zero exit, and no traceback.

Through the real command: one case per kind of check. The value rules of dlrun/validate.py are
each tested in-process below (a process start costs ~5 s; the rules share one error path)."""

import pytest

BAD = [
    (["model=nope"], "model=nope is not a model option"),
    (["trainer.epoch=3"], "trainer.epoch"),
    (["trainer.epochs=0"], "trainer.epochs=0 is invalid"),
    (
        ["trainer.early_stopping.patience=2", "trainer.early_stopping.metric=f1"],
        "trainer.early_stopping.metric='f1' is not a classification metric",
    ),
    (["device=cuda"], "CUDA is not available"),
    (["data=csv"], "data.path is required"),
    (
        ["data=csv", "data.path=missing.csv", "data.target=y"],
        "data.path=missing.csv does not exist",
    ),
    (["loss=mse"], "MSELoss cannot train a classification task"),
    (["loss=bce_with_logits"], "needs two classes"),
    (["model=mlp", "+model.hiden=[3]"], "model.hiden is not a parameter"),
    (["model._target_=os.system"], "is not allowed"),
    (["model.activation=swish"], "model.activation='swish' is unknown"),
    (["model=lstm"], "needs 'vocab_size', which neither the config nor the data provides"),
    (
        ["model=gan", "+optimizers.generatr.lr=1e-4"],
        "optimizers.generatr is not an optimizer group of this adversarial model: its groups are "
        "['discriminator', 'generator']",
    ),
    (["seed=1.5"], "seed=1.5 is invalid: it must be an integer >= 0"),
    (
        ["model=resnet18", "data=classification", "debug=smoke"],
        "model=resnet18 needs images but data=classification gives 10 features: "
        "use an image dataset",
    ),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_clear_error(dlrun, args, message):
    if "cuda" in args[0]:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    proc = dlrun(*args, expect_fail=True)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_csv_without_the_target_column(dlrun, tmp_path):
    (tmp_path / "t.csv").write_text("a,b\n1,2\n3,4\n")
    proc = dlrun("data=csv", "data.path=t.csv", "data.target=label", expect_fail=True)
    assert proc.returncode == 2
    assert "data.target='label' is not a column" in proc.stderr and "['a', 'b']" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_our_errors_are_exactly_one_line(dlrun):
    proc = dlrun("optimizer.lr=-1", expect_fail=True)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("dlrun: error: ")


RULES = [
    (["trainer.epochs=abc"], "trainer.epochs='abc' is invalid"),
    (["trainer.batch_size=-4"], "trainer.batch_size=-4 is invalid"),
    (["optimizer.lr=0"], "optimizer.lr=0 is invalid"),
    (["optimizer.lr=-0.1"], "optimizer.lr=-0.1 is invalid"),
    (["data.val_fraction=1.5"], "data.val_fraction=1.5 is invalid"),
    (["data.val_fraction=0"], "data.val_fraction=0 is invalid"),
    (["scheduler=step", "scheduler.step_size=0"], "scheduler.step_size=0 is invalid"),
    (["seed=-1"], "seed=-1 is invalid"),
    (["loss=cross_entropy", "loss.label_smoothing=2"], "loss.label_smoothing=2 is invalid"),
    (["model=mlp", "model.hidden=[0]"], "model.hidden=[0] is invalid"),
    (["model=cnn", "model.hidden=-5"], "model.hidden=-5 is invalid"),
]


@pytest.mark.parametrize("args,message", RULES, ids=[" ".join(a) for a, _ in RULES])
def test_bad_value_is_refused_before_anything_runs(compose, args, message):
    from dlrun.errors import ConfigError
    from dlrun.validate import validate_config

    with pytest.raises(ConfigError) as err:
        validate_config(compose(*args))
    assert message in str(err.value) and "\n" not in str(err.value)
