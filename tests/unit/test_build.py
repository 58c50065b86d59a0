"""build.py: the target allowlist, signature binding, shape inference and loss compatibility."""

import pytest
import torch
from omegaconf import OmegaConf

from dlrun import build
from dlrun.errors import ConfigError
from dlrun.schema import TrainerConfig


@pytest.mark.parametrize(
    "target",
    [
        "os.system",
        "builtins.eval",
        "logging.os.system",
        "subprocess.Popen",
        "torch.nn.modules.module.torch.load",
        "torch.nn.Module.__subclasses__",
        "dlrun.checkpoint.os.system",
    ],
)
def test_forbidden_targets_are_refused(target):
    with pytest.raises(ConfigError, match="not allowed"):
        build.check_target(target, "model")


def test_nested_forbidden_target_is_found_before_anything_runs():
    cfg = OmegaConf.create(
        {"model": {"_target_": "dlrun.models.mlp.MLP", "act": {"_target_": "os.system"}}}
    )
    with pytest.raises(ConfigError, match=r"model\.act\._target_='os.system'"):
        build.check_all_targets(cfg)


def test_allowed_targets_resolve():
    for target in [
        "torch.nn.CrossEntropyLoss",
        "torch.optim.SGD",
        "torch.optim.lr_scheduler.OneCycleLR",
        "dlrun.models.mlp.MLP",
        "torchvision.models.resnet18",
    ]:
        assert callable(build.check_target(target, "x"))


def test_unknown_kwarg_names_the_key_and_valid_ones():
    node = OmegaConf.create({"_target_": "dlrun.models.mlp.MLP", "hiden": [4]})
    with pytest.raises(ConfigError, match=r"model\.hiden is not a parameter.*hidden"):
        build.build_object(node, "model", {"in_features": 3, "out_features": 2})


def test_data_decided_value_typed_by_user_is_refused():
    node = OmegaConf.create({"_target_": "dlrun.models.mlp.MLP", "in_features": 10})
    with pytest.raises(ConfigError, match="decided by the data"):
        build.build_object(node, "model", {"in_features": 64, "out_features": 10})


@pytest.mark.parametrize(
    "overrides,key,message",
    [
        (["model=mlp", "model.activation=swish"], "model", "model.activation='swish' is unknown"),
        (["model=lstm", "model.cell=gru2"], "model", "model.cell='gru2' is unknown"),
        (["loss=gan", "loss.label_smoothing=1.0"], "loss", "loss.label_smoothing=1.0 is invalid"),
        (["data=text_csv", "data.path=x.csv", "data.min_freq=0"], "data", "data.min_freq=0 is"),
        (
            ["data=image_folder", "data.path=pics", "data.image_size=4"],
            "data",
            "data.image_size=4 is invalid: use an integer >= 8",
        ),
    ],
)
def test_a_builders_value_error_gets_the_config_key(compose, overrides, key, message):
    """Models, losses and data builders word errors about their own arguments (`cell='gru2'`);
    build names the config key the user typed (`model.cell='gru2'`)."""
    cfg = compose(*overrides)
    facts = {"seed": 0, "in_features": 64, "out_features": 10, "vocab_size": 9, "num_classes": 2}
    with pytest.raises(ConfigError) as err:
        build.build_object(cfg[key], key, facts)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_a_value_error_not_about_an_argument_names_the_target():
    # DCGAN halves its input twice: a 30 px side does not divide (the data decides the shape)
    node = OmegaConf.create({"_target_": "dlrun.models.generative.DCGAN"})
    with pytest.raises(ConfigError) as err:
        build.build_object(node, "model", {"input_shape": (1, 30, 30)})
    assert str(err.value).startswith(
        "model (dlrun.models.generative.DCGAN) could not be built: DCGAN halves the image 2 times"
    )


def test_shapes_come_from_the_data(compose):
    cfg = compose("model=mlp", "model.hidden=[16]")
    data = build.build_data(cfg.data, seed=0)
    task = build.build_task(cfg, data, torch.device("cpu"))
    first, last = task.model.net[0], task.model.net[-1]
    assert (first.in_features, last.out_features) == (64, 10)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["loss=mse"], "MSELoss cannot train a classification task"),
        (["loss=bce_with_logits"], "needs two classes but the data has 10"),
        (
            ["data=regression", "loss=cross_entropy"],
            "CrossEntropyLoss cannot train a regression task",
        ),
    ],
)
def test_incompatible_loss_is_refused(compose, overrides, message):
    cfg = compose(*overrides)
    data = build.build_data(cfg.data, seed=0)
    with pytest.raises(ConfigError, match=message):
        build.build_task(cfg, data, torch.device("cpu"))


def test_binary_bce_uses_one_logit(compose):
    cfg = compose("data=classification", "loss=bce_with_logits", "model=perceptron")
    data = build.build_data(cfg.data, seed=0)
    task = build.build_task(cfg, data, torch.device("cpu"))
    assert task.model.linear.out_features == 1


def test_onecycle_gets_total_steps_from_the_run(compose):
    cfg = compose("scheduler=onecycle")
    data = build.build_data(cfg.data, seed=0)
    task = build.build_task(cfg, data, torch.device("cpu"))
    opts = build.build_optimizers(cfg, task)
    scheds = build.build_schedulers(cfg.scheduler, opts, epochs=3, steps_per_epoch=7)
    sched, interval = scheds["model"]
    assert interval == "step" and sched.total_steps == 21


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_optimizers_use_one_fused_kernel_and_refuse_a_clash_in_one_line(compose, optimizer):
    cfg = compose(f"optimizer={optimizer}")
    task = build.build_task(cfg, build.build_data(cfg.data, seed=0), torch.device("cpu"))
    assert build.build_optimizers(cfg, task)["model"].defaults["fused"] is True
    # torch refuses fused with foreach when the optimizer is made: one line naming the key
    with pytest.raises(ConfigError, match=r"^optimizer \(torch.optim.\w+\) could not be built: "):
        build.build_optimizers(compose(f"optimizer={optimizer}", "+optimizer.foreach=true"), task)


def test_a_misspelt_builtin_is_one_line_naming_the_right_one():
    with pytest.raises(
        ConfigError, match=r"not allowed \(did you mean torch.nn.MSELoss\?\)"
    ) as err:
        build.check_target("torch.nn.MSELos", "loss")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "model,expected", [("mlp", ["model"]), ("gan", ["generator", "discriminator"])]
)
def test_compile_reaches_the_modules_the_task_calls(compose, model, expected):
    from dlrun.run import speed_up

    cfg = compose(f"model={model}", "trainer.compile=true")
    data = build.build_data(cfg.data, seed=0, task_needs_images=build.model_needs_images(cfg.model))
    task = build.build_task(cfg, data, torch.device("cpu"))
    # compiles lazily: nothing runs until the first call
    speed_up(task, TrainerConfig.from_config(cfg.trainer))
    modules = {"model": task.model, **dict(task.model.named_children())}
    compiled = [name for name, m in modules.items() if m._compiled_call_impl is not None]
    assert compiled == expected
