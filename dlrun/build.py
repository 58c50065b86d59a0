"""The one place that turns config nodes into objects: dlrun's own builder, never instantiate.

Every `_target_` is checked against an allowlist before anything is imported or called, and
keyword arguments are bound against the target's signature so a typo is a one-line error.
Values the data decides (input size, classes, vocabulary) are filled in here, never typed by users.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from dlrun import param_types, registry
from dlrun.data.bundle import DataBundle
from dlrun.errors import ConfigError, DlrunError, ImagesTooSmall
from dlrun.schedules import Warmup
from dlrun.tasks import TASKS, Task

if TYPE_CHECKING:
    from dlrun.hooks import Hooks

# `loss=auto` resolves to one of these by task.
LOSS_TARGETS = {
    "cross_entropy": "torch.nn.CrossEntropyLoss",
    "mse": "torch.nn.MSELoss",
    "bce_with_logits": "torch.nn.BCEWithLogitsLoss",
    "gan": "dlrun.tasks.adversarial.GANLoss",
}

# Keys dlrun reads itself where a target does not take them (timm_model takes `name`).
_DLRUN_KEYS = {"interval", "name", "class_weights", "warmup_epochs", "warmup_start_factor"}


def _dlrun_keys(node: DictConfig, key: str) -> set[str]:
    """The keys of `node` that dlrun reads itself: those its target does not take as
    parameters (so `model.name` reaches timm_model, and `loss.name` stays dlrun's)."""
    params = inspect.signature(check_target(node._target_, key)).parameters
    return {k for k in _DLRUN_KEYS if k not in params}


def check_target(target: object, key: str) -> Any:
    """Return the object a `_target_` names, or raise ConfigError if the registry refuses it."""
    registry.check(target, key)
    try:
        return registry.locate(str(target))
    except (ImportError, AttributeError) as err:  # one line, not a traceback
        reason = str(err).strip().splitlines()[-1]
        raise ConfigError(
            f"{key}._target_={target!r} cannot be imported ({reason}): check the spelling"
        ) from None


def check_all_targets(cfg: Any) -> None:
    """Check every `_target_` in the config (any depth, any key) before anything is built."""
    registry.check_config(cfg)


def _bind(
    node: DictConfig, key: str, facts: Mapping[str, Any], runtime: Iterable[str] = ()
) -> dict[str, Any]:
    """Check `node`'s kwargs against its target's signature; return the facts it accepts."""
    target = check_target(node._target_, key)
    params = inspect.signature(target).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    given = {k for k in node if not str(k).startswith("_") and k not in _dlrun_keys(node, key)}
    if not takes_any:
        unknown = sorted(given - set(params))
        if unknown:
            valid = [
                n
                for n, p in params.items()
                if p.kind is p.POSITIONAL_OR_KEYWORD or p.kind is p.KEYWORD_ONLY
            ]
            raise ConfigError(
                f"{key}.{unknown[0]} is not a parameter of {node._target_}: valid ones are {valid}"
            )
    values = OmegaConf.to_container(node, resolve=True)
    assert isinstance(values, dict)
    param_types.check_types(target, {k: values[k] for k in given if k in params}, key)
    accepted = {k: v for k, v in facts.items() if k in params}
    if not node.get("_partial_", False):
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        missing = [
            n
            for n, p in params.items()
            if p.kind in named
            and p.default is p.empty
            and n not in given
            and n not in accepted
            and n not in runtime
        ]
        if missing:
            raise ConfigError(
                f"{node._target_} needs {missing[0]!r}, "
                "which neither the config nor the data provides: "
                f"choose a {key} that fits this data, or set {key}.{missing[0]}"
            )
    for k in given & set(accepted):
        if node[k] != accepted[k]:
            raise ConfigError(
                f"{key}.{k} is decided by the data ({accepted[k]}): "
                f"remove {key}.{k} from the config"
            )
    return accepted


def build_object(
    node: DictConfig, key: str, facts: Mapping[str, Any] | None = None, **runtime: Any
) -> Any:
    """Build `node` with the data facts its signature accepts plus `runtime` arguments.

    Built by dlrun itself, not by Hydra's instantiate: instantiate turns its arguments into an
    OmegaConf node again, which evaluates `${...}` that was escaped (a checkpoint's text) and
    builds any nested `_target_` inside a keyword value (a checkpoint's data state). Here the
    checked target is called once with plain Python values, and nothing reads them again."""
    accepted = _bind(node, key, facts or {}, runtime)
    plain = OmegaConf.to_container(node, resolve=True)
    assert isinstance(plain, dict)
    registry.check_config(plain, key)
    for k in _dlrun_keys(node, key):
        plain.pop(k, None)
    target = check_target(plain.pop("_target_"), key)
    partial = bool(plain.pop("_partial_", False))
    args = plain.pop("_args_", [])
    kwargs = {k: v for k, v in plain.items() if not str(k).startswith("_")}
    _refuse_nested_targets(kwargs, key)
    try:
        call = functools.partial(target, *args, **kwargs, **accepted)
        if partial:
            return functools.partial(call, **runtime)
        return call(**runtime)
    except DlrunError:
        raise
    except Exception as err:
        decided = {*accepted, *runtime}
        raise ConfigError(_not_built(node, key, err, decided)) from err  # cause: for callers


def _refuse_nested_targets(value: Any, key: str) -> None:
    """A `_target_` below a node's own is never built: say so rather than pass a dict on."""
    if isinstance(value, Mapping):
        if "_target_" in value:
            raise ConfigError(
                f"{key} holds a nested _target_ ({value['_target_']!r}): dlrun builds only the "
                "_target_ of each group's own node; pass plain values"
            )
        for k, v in value.items():
            _refuse_nested_targets(v, f"{key}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _refuse_nested_targets(v, f"{key}[{i}]")


def _not_built(node: DictConfig, key: str, err: BaseException, decided: set[str]) -> str:
    """One line for an object that could not be built. A builder's ValueError names its own
    arguments as `name=value` ("stem='tiny' is invalid"); here they get their config key
    ("model.stem='tiny' is invalid"), except the arguments the data decides."""
    message = str(err).strip()
    if isinstance(err, ValueError):
        params = inspect.signature(check_target(node._target_, key)).parameters
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        own = [n for n, p in params.items() if p.kind in named and n not in decided]
        if own:
            pattern = rf"(?<![\w.])({'|'.join(map(re.escape, own))})="
            keyed, count = re.subn(pattern, rf"{key}.\1=", message)
            if count:
                return keyed
    return f"{key} ({node._target_}) could not be built: {message}"


def build_data(
    node: DictConfig,
    seed: int,
    checkpoint_state: dict | None = None,
    task_needs_images: bool = False,
    device_type: str = "cpu",
) -> DataBundle:
    """The dataset; a builder that takes `checkpoint_state` gets what a checkpoint saved (e.g. a
    vocabulary), one that takes `task_needs_images` learns whether the model wants images
    (digits), one that takes `device_type` where the model trains (its loading workers)."""
    facts = {
        "seed": seed,
        "checkpoint_state": checkpoint_state,
        "task_needs_images": task_needs_images,
        "device_type": device_type,
    }
    bundle = build_object(node, "data", facts)
    if not isinstance(bundle, DataBundle):
        raise ConfigError(f"data._target_={node._target_} must return a dlrun DataBundle")
    return bundle


def all_tasks() -> dict[str, type[Task]]:
    """dlrun's tasks and those plugins registered (`@dlrun.register("task", name)`)."""
    return {**TASKS, **registry.registered_tasks()}


def task_name(model_node: DictConfig, data: DataBundle) -> str:
    """A model may declare the task it needs (autoencoder, GAN); otherwise the data decides."""
    model_cls = check_target(model_node._target_, "model")
    return getattr(model_cls, "dlrun_task", None) or data.task


def model_needs_images(model_node: DictConfig) -> bool:
    """Whether the model needs image-shaped data: it reads images (convolutions) or the task it
    declares needs them (autoencoder, GAN). Data that can be either (digits) is served as images."""
    declared = getattr(check_target(model_node._target_, "model"), "dlrun_task", None)
    tasks = all_tasks()
    return (declared in tasks and tasks[declared].needs_images) or model_reads_images(model_node)


def build_loss(node: DictConfig, task_cls: type[Task], data: DataBundle | None = None) -> nn.Module:
    weights = node.get("class_weights")
    if node.get("name") == "auto":
        node = OmegaConf.create({"_target_": LOSS_TARGETS[task_cls.default_loss]})
    if "_target_" not in node:
        raise ConfigError(
            "loss has no _target_: pick one with loss=cross_entropy|mse|... or loss=auto"
        )
    if weights is None or data is None:
        return build_object(node, "loss")
    # loss.class_weights=auto|[...]: a weight per class, from the training split's counts
    target = check_target(node._target_, "loss")
    return build_object(node, "loss", **task_cls.class_weight_kwargs(weights, target, data))


def check_model_inputs(model_node: DictConfig, data: DataBundle) -> None:
    """Refuse a model whose forward cannot take the data's batch inputs (text adds `lengths`)."""
    inputs = data.batch_inputs
    forward = getattr(check_target(model_node._target_, "model"), "forward", None)
    if inputs == ("x",) or forward is None:  # plain x: a GAN's task calls forward with noise
        return
    params = inspect.signature(forward).parameters
    if set(inputs) <= set(params) or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    raise ConfigError(
        f"model {model_node._target_} cannot read this data: its batches hold {list(inputs)} but "
        f"forward takes {[n for n in params if n != 'self']}; pick a model made for it "
        "(text: model=lstm|gru|rnn|embedding_bag)"
    )


# Facts only image data has: a model builder that takes one reads (C, H, W) images.
_IMAGE_FACTS = {"in_channels", "image_size"}
IMAGE_DATASETS = "data=mnist, fashion_mnist, cifar10, cifar100 or image_folder"


def model_reads_images(model_node: DictConfig) -> bool:
    """Whether the model's forward needs (C, H, W) images: its builder takes in_channels or
    image_size (torchvision models, ResNet-9) or declares `dlrun_reads_images` (LeNet, CNN,
    which are sized from the whole input_shape like shape-agnostic models)."""
    builder = check_target(model_node._target_, "model")
    if getattr(builder, "dlrun_reads_images", False):
        return True
    return bool(_IMAGE_FACTS & set(inspect.signature(builder).parameters))


def _option(group: str, node: DictConfig) -> str:
    """The option chosen for `group` (resnet18), or its target's name outside a Hydra run."""
    from hydra.core.hydra_config import HydraConfig

    choice = HydraConfig.get().runtime.choices.get(group) if HydraConfig.initialized() else None
    return str(choice or str(node._target_).rsplit(".", 1)[-1].lower())  # LeNet -> lenet


def check_image_inputs(cfg: DictConfig, data: DataBundle) -> None:
    """Refuse an image model on data that is not (C, H, W) images, before it is built."""
    shape = tuple(data.input_shape)
    if len(shape) == 3 or not model_reads_images(cfg.model):
        return
    data_name = _option("data", cfg.data)
    gives = f"{shape[0]} features" if len(shape) == 1 else f"inputs of shape {shape}"
    data_params = inspect.signature(check_target(cfg.data._target_, "data")).parameters
    fix = (
        f"use data.as_images=true ({data_name} served as images) or an image dataset"
        if "as_images" in data_params
        else "use an image dataset"
    )
    raise ConfigError(
        f"model={_option('model', cfg.model)} needs images but data={data_name} gives {gives}: "
        f"{fix} ({IMAGE_DATASETS}), or a model for features (model=mlp, linear)"
    )


def _larger_images(data_node: DictConfig) -> str:
    """How to get larger images from this data, for a model that finds them too small."""
    if "image_size" in data_node:  # image_folder resizes every image to it
        return f"raise data.image_size (now {data_node.image_size}) or use another model"
    return (
        "use a model made for small images (model=cnn, resnet9, resnet18) or a dataset of larger "
        f"images ({IMAGE_DATASETS})"
    )


def build_task(cfg: DictConfig, data: DataBundle, device: torch.device) -> Task:
    """Loss, then the model (sized from the data and the task), wrapped in its task."""
    name = task_name(cfg.model, data)
    tasks = all_tasks()
    if name not in tasks:
        raise ConfigError(f"task {name!r} is unknown: known tasks are {sorted(tasks)}")
    task_cls = tasks[name]
    task_cls.check_data(data)
    loss_fn = build_loss(cfg.loss, task_cls, data)
    task_cls.check_loss(loss_fn, data)
    facts = {**data.model_facts(), **task_cls.output_facts(loss_fn, data)}
    check_model_inputs(cfg.model, data)
    check_image_inputs(cfg, data)
    try:
        model = build_object(cfg.model, "model", facts)
    except ConfigError as err:
        if not isinstance(err.__cause__, ImagesTooSmall):
            raise
        raise ConfigError(
            f"model={_option('model', cfg.model)} cannot take {err.__cause__.shape} images (too "
            f"small for its convolutions and pooling): {_larger_images(cfg.data)}"
        ) from None
    return task_cls(model.to(device), loss_fn.to(device), data)


def build_optimizers(cfg: DictConfig, task: Task) -> dict[str, torch.optim.Optimizer]:
    """One optimizer per parameter group of the task; `optimizers.<group>` overrides `optimizer`."""
    overrides = cfg.get("optimizers") or {}
    groups = task.param_groups()
    unknown = sorted(set(overrides) - set(groups))
    if unknown:  # a typo (generatr) or a group this model does not have: never silently ignored
        raise ConfigError(
            f"optimizers.{unknown[0]} is not an optimizer group of this {task.name} model: its "
            f"groups are {sorted(groups)} (model-wide settings go under optimizer.*)"
        )
    built = {}
    for group, params in groups.items():
        # Resolve first: an override may interpolate the root config (lr: ${optimizer.lr}).
        node = (
            OmegaConf.merge(cfg.optimizer, OmegaConf.to_container(overrides[group], resolve=True))
            if group in overrides
            else cfg.optimizer
        )
        key = f"optimizers.{group}" if group in overrides else "optimizer"
        make = build_object(node, key)
        try:  # torch checks its arguments here, with the parameters (fused and foreach, ...)
            built[group] = make(params)
        except (ValueError, RuntimeError, TypeError) as err:
            raise ConfigError(_not_built(node, key, err, {"params"})) from err
    return built


def build_schedulers(
    node: DictConfig,
    optimizers: dict[str, torch.optim.Optimizer],
    epochs: int,
    steps_per_epoch: int,
    monitor_mode: str = "min",
) -> dict[str, tuple[Any, str]]:
    """(scheduler, interval) per optimizer; interval is "epoch" or "step". Empty for
    scheduler=none without warm-up. `monitor_mode` is trainer.monitor's direction (plateau)."""
    warmup, start = _warmup(node, epochs)
    if "_target_" not in node:  # scheduler=none: a constant lr, after any warm-up
        if not warmup:
            return {}
        return {n: (Warmup(o, None, warmup, start), "epoch") for n, o in optimizers.items()}
    interval = node.get("interval", "epoch")
    if interval not in {"epoch", "step"}:
        raise ConfigError(f"scheduler.interval={interval!r} is invalid: use epoch or step")
    plateau = str(node._target_).endswith("ReduceLROnPlateau")
    if plateau and interval != "epoch":
        raise ConfigError("scheduler=plateau steps on each epoch's val metric: use interval=epoch")
    per = steps_per_epoch if interval == "step" else 1
    main = epochs - warmup  # the schedule's own length: it starts after the warm-up
    facts: dict[str, Any] = {"total_steps": main * per, "epochs": main}
    if "T_max" not in node:  # cosine decays over the run (after any warm-up) unless told
        facts["T_max"] = main * per
    if plateau:
        facts["mode"] = monitor_mode  # ReduceLROnPlateau's direction is trainer.monitor's
    built = {}
    for name, opt in optimizers.items():
        inner = build_object(node, "scheduler", facts)(opt)
        built[name] = (Warmup(opt, inner, warmup * per, start) if warmup else inner, interval)
    return built


def _warmup(node: DictConfig, epochs: int) -> tuple[int, float]:
    """scheduler.warmup_epochs and warmup_start_factor, checked."""
    warmup, start = node.get("warmup_epochs") or 0, node.get("warmup_start_factor", 0.1)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ConfigError(
            f"scheduler.warmup_epochs={warmup} is invalid: a whole number of epochs >= 0"
        )
    if warmup and "_target_" in node and warmup >= epochs:
        raise ConfigError(
            f"scheduler.warmup_epochs={warmup} leaves no epoch for the schedule "
            f"(trainer.epochs={epochs}): lower it or raise trainer.epochs"
        )
    if isinstance(start, bool) or not isinstance(start, int | float) or not 0 < start <= 1:
        raise ConfigError(
            f"scheduler.warmup_start_factor={start} is invalid: a fraction of the lr in (0, 1]"
        )
    return warmup, float(start)


def build_loggers(node: DictConfig | None, artifacts: Any, config: dict[str, Any]) -> list[Any]:
    """One logger per entry of `logger` (`logger=[csv,tensorboard]` selects several)."""
    # the run's config is handed over as data (a runtime argument): its `_target_`s are not built
    return [
        build_object(child, f"logger.{name}", artifacts=artifacts, run_config=config)
        for name, child in (node or {}).items()
    ]


def build_hooks(node: DictConfig | None) -> Hooks:
    """The run's hooks, one per entry of `hooks` (`hooks=[ema]`; dlrun/hooks.py), in order."""
    from dlrun.hooks import Hooks

    named = {name: build_object(child, f"hooks.{name}") for name, child in (node or {}).items()}
    return Hooks(named)
