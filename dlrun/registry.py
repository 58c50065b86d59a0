"""What dlrun may build: the plug-in point and the trust boundary in one place.

A `_target_` is built only if it is
  (a) a registered built-in: the explicit list below (no prefix wildcards: `torch.nn.*` would
      admit file writers and loaders that live there too), or
  (b) registered by a plugin (`@dlrun.register("model", "tiny_net")`), or inside a plugin
      module: one the user listed in `plugins` (command line or config dir) or an installed
      package's `dlrun.plugins` entry point.
A file (a checkpoint's config, model.yaml) is data: it may name built-ins, and plugin code only
from the modules this command's own `plugins` list names; it never imports anything itself.

The built-ins are plain strings, so checking them imports nothing (`dlrun --help`, `--cfg job`
stay free of torch). Only plugin targets are imported to check where they really live.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from omegaconf import OmegaConf

from dlrun.errors import ConfigError

_NN = "torch.nn."
_OPTIM = "torch.optim."
_SCHED = "torch.optim.lr_scheduler."
_TV = "torchvision.models."

# group -> dotted targets. Every entry is a class or function that takes plain values.
BUILTINS: dict[str, tuple[str, ...]] = {
    "model": (
        "dlrun.models.mlp.Perceptron",
        "dlrun.models.mlp.MLP",
        "dlrun.models.vision.LeNet",
        "dlrun.models.vision.CNN",
        "dlrun.models.vision.resnet18",
        "dlrun.models.vision.resnet34",
        "dlrun.models.vision.vgg11",
        "dlrun.models.vision.alexnet",
        "dlrun.models.speed.ResNet9",
        "dlrun.models.timm_models.timm_model",
        "dlrun.models.text.RNNClassifier",
        "dlrun.models.text.EmbeddingBagClassifier",
        "dlrun.models.generative.Autoencoder",
        "dlrun.models.generative.ConvAutoencoder",
        "dlrun.models.generative.GAN",
        "dlrun.models.generative.DCGAN",
        *(
            _TV + n
            for n in (
                "resnet18",
                "resnet34",
                "resnet50",
                "vgg11",
                "vgg16",
                "alexnet",
                "mobilenet_v2",
                "mobilenet_v3_small",
                "efficientnet_b0",
                "densenet121",
                "squeezenet1_1",
                "shufflenet_v2_x1_0",
            )
        ),
    ),
    "data": (
        "dlrun.data.tabular.digits",
        "dlrun.data.tabular.synthetic_classification",
        "dlrun.data.tabular.synthetic_regression",
        "dlrun.data.tabular.csv_table",
        "dlrun.data.vision.mnist",
        "dlrun.data.vision.fashion_mnist",
        "dlrun.data.vision.cifar10",
        "dlrun.data.vision.cifar100",
        "dlrun.data.folder.image_folder",
        "dlrun.data.text.ag_news",
        "dlrun.data.text.text_csv",
    ),
    "loss": (
        "dlrun.tasks.adversarial.GANLoss",
        *(
            _NN + n
            for n in (
                "CrossEntropyLoss",
                "NLLLoss",
                "BCEWithLogitsLoss",
                "BCELoss",
                "MSELoss",
                "L1Loss",
                "SmoothL1Loss",
                "HuberLoss",
                "KLDivLoss",
                "PoissonNLLLoss",
                "GaussianNLLLoss",
                "MultiMarginLoss",
                "MultiLabelMarginLoss",
                "MultiLabelSoftMarginLoss",
                "SoftMarginLoss",
                "HingeEmbeddingLoss",
                "CosineEmbeddingLoss",
                "MarginRankingLoss",
                "TripletMarginLoss",
            )
        ),
    ),
    "optimizer": tuple(
        _OPTIM + n
        for n in (
            "SGD",
            "Adam",
            "AdamW",
            "RMSprop",
            "Adagrad",
            "Adadelta",
            "Adamax",
            "NAdam",
            "RAdam",
            "ASGD",
            "Rprop",
        )
    ),
    "scheduler": tuple(
        _SCHED + n
        for n in (
            "StepLR",
            "MultiStepLR",
            "ExponentialLR",
            "CosineAnnealingLR",
            "CosineAnnealingWarmRestarts",
            "OneCycleLR",
            "LinearLR",
            "ConstantLR",
            "PolynomialLR",
            "CyclicLR",
            "ReduceLROnPlateau",
        )
    ),
    "logger": (
        "dlrun.loggers.CSVLogger",
        "dlrun.loggers.TensorBoardLogger",
        "dlrun.loggers.MLflowLogger",
        "dlrun.loggers.WandbLogger",
    ),
    "callback": ("dlrun.sweep.SweepCallback", "dlrun.callbacks.OutputGuard"),
    "hook": ("dlrun.hooks.EMA",),
    # Not `_target_`s: chosen by name (the data's task, or a model's `dlrun_task`).
    "task": (
        "dlrun.tasks.classification.ClassificationTask",
        "dlrun.tasks.regression.RegressionTask",
        "dlrun.tasks.reconstruction.ReconstructionTask",
        "dlrun.tasks.adversarial.AdversarialTask",
    ),
}
BUILTIN_TARGETS = frozenset(t for group, ts in BUILTINS.items() if group != "task" for t in ts)
GROUPS = tuple(BUILTINS)

# Plugin state of this process: module -> where it came from; group -> short name -> target.
_PLUGINS: dict[str, str] = {}
_REGISTERED: dict[str, dict[str, str]] = {}
_OBJECTS: dict[str, Any] = {}  # registered target -> the object (tasks are looked up here)
_ENTRY_POINTS: dict[str, str] | None = None

T = TypeVar("T")


def register(group: str, name: str) -> Callable[[T], T]:
    """Decorator: make a plugin's class or function buildable under a short name.

    `@dlrun.register("model", "tiny_net")` lets a run use `model=tiny_net`; `"task"` registers a
    Task class that a model selects with its `dlrun_task` attribute.
    """
    if group not in GROUPS:
        raise ValueError(f"dlrun.register: unknown group {group!r}; groups are {list(GROUPS)}")

    def _add(obj: T) -> T:
        target = f"{obj.__module__}.{obj.__qualname__}"  # type: ignore[attr-defined]
        if "<" in target:
            raise ValueError(f"dlrun.register({group!r}, {name!r}): define it at module level")
        _refuse_a_second(group, name, target)
        _REGISTERED.setdefault(group, {})[name] = target
        _OBJECTS[target] = obj
        _offer_as_option(group, name, target, obj)
        return obj

    return _add


def _refuse_a_second(group: str, name: str, target: str) -> None:
    """Two plugins registering one short name: which one `model=NAME` built would depend on
    the import order. An error naming both (re-registering the same object is fine)."""
    earlier = _REGISTERED.get(group, {}).get(name)
    if earlier is not None and earlier != target:
        raise ConfigError(
            f"dlrun.register({group!r}, {name!r}): {target} and {earlier} both register "
            f"{group}={name}: rename one of them"
        )


def _offer_as_option(group: str, name: str, target: str, obj: Any) -> None:
    """`model=tiny_net` on the command line: a config group option in Hydra's ConfigStore, with
    the constructor's plain defaults as keys (so `model.hidden=64` overrides one)."""
    if group in ("task", "callback"):
        return
    from hydra.core.config_store import ConfigStore

    node: dict[str, Any] = {"_target_": target, **_plain_defaults(obj)}
    if group in ("optimizer", "scheduler"):
        node["_partial_"] = True  # built with run-time arguments (parameters, optimizer)
    ConfigStore.instance().store(
        group="hooks" if group == "hook" else group,
        name=name,
        node={name: node} if group in ("logger", "hook") else node,
    )


def _plain_defaults(obj: Any) -> dict[str, Any]:
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return {}
    plain = (int, float, str, bool, type(None))
    return {
        p.name: list(p.default) if isinstance(p.default, tuple) else p.default
        for p in params
        if p.default is not p.empty
        and (
            isinstance(p.default, plain)
            or (
                isinstance(p.default, list | tuple) and all(isinstance(v, plain) for v in p.default)
            )
        )
    }


def registered(group: str) -> dict[str, str]:
    """Short name -> target of what plugins registered in `group`."""
    return dict(_REGISTERED.get(group, {}))


def registered_tasks() -> dict[str, Any]:
    return {n: _OBJECTS[t] for n, t in _REGISTERED.get("task", {}).items()}


def plugins() -> dict[str, str]:
    """Imported plugin modules -> where they came from."""
    return dict(_PLUGINS)


def entry_point_modules() -> dict[str, str]:
    """Modules declared by installed packages under the `dlrun.plugins` entry point group."""
    global _ENTRY_POINTS
    if _ENTRY_POINTS is None:
        from importlib.metadata import entry_points

        _ENTRY_POINTS = {
            ep.module: f"entry point of {ep.dist.name if ep.dist else ep.name}"
            for ep in entry_points(group="dlrun.plugins")
        }
    return dict(_ENTRY_POINTS)


def load_plugins(modules: Iterable[Any], source: str = "plugins") -> None:
    """Import each plugin module once (which may register short names). The current folder is
    searched last (the `dlrun` script does not put it on the path; appended, it shadows nothing)."""
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    for module in modules:
        name = str(module)
        if name in _PLUGINS:
            continue
        if not all(p.isidentifier() for p in name.split(".")):
            raise ConfigError(f"plugins: {name!r} is not a module name: use plugins=[mymodels]")
        if _is_library(name):
            raise ConfigError(
                f"plugins: {name} is a library, not a plugin: a plugin is your own module "
                "(plugins=[mymodels]); dlrun builds a library's classes only from its built-ins"
            )
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ConfigError(
                f"plugin {name} ({source}) cannot be imported ({err}): put it on the path "
                "(the current folder or PYTHONPATH) or install it"
            ) from None
        _PLUGINS[name] = source


def activate(config_plugins: Any = None) -> None:
    """The installed entry points, then `config_plugins`: modules the caller trusts (the
    command line's plugins=[...], or the Python API's `plugins=`)."""
    for module, source in entry_point_modules().items():
        load_plugins([module], source)
    load_plugins(_as_list(config_plugins), "plugins=")


def activate_typed(config_plugins: Any, overrides: Iterable[str]) -> None:
    """`activate` for a composed config's `plugins`: only modules the command line named
    (`overrides`, as typed); a config file's `plugins:` list never makes a module a plugin."""
    typed = set(typed_plugins(overrides))
    for module in _as_list(config_plugins):
        if module not in typed:
            raise ConfigError(
                f"plugins: {module} comes from a config file, and a file cannot choose code to "
                f"import: name it on the command line (plugins=[{module}]) if you trust it"
            )
    activate(config_plugins)


def activate_for_job(config_plugins: Any) -> None:
    """activate_typed with this Hydra job's command-line overrides (none outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    typed = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    activate_typed(config_plugins, typed)


def typed_plugins(overrides: Iterable[str]) -> list[str]:
    """The modules of `plugins=[...]` overrides (every option of a sweep over them)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    found: list[str] = []
    for arg in overrides:
        if not str(arg).lstrip("+~").startswith("plugins="):
            continue
        try:
            value = OverridesParser.create().parse_override(str(arg)).value()
        except Exception:  # noqa: BLE001 (malformed: Hydra reports it in its own words)
            continue
        for option in value.list if hasattr(value, "list") else [value]:
            found += [option] if isinstance(option, str) else [str(m) for m in option or []]
    return found


# Never plugins, whoever names them: a plugin's whole module becomes buildable, and these hold
# file writers, loaders and process launchers (torch.save, shutil.rmtree, os.system).
_LIBRARIES = frozenset(
    {
        *("dlrun", "torch", "torchvision", "torchaudio", "timm", "numpy", "scipy", "pandas"),
        *("pyarrow", "sklearn", "hydra", "hydra_plugins", "omegaconf", "PIL", "safetensors"),
        *("optuna", "submitit", "joblib", "yaml", "tqdm", "matplotlib", "mlflow", "tensorboard"),
        *("onnx", "onnxruntime", "requests", "urllib3", "setuptools", "pip", "pkg_resources"),
    }
)


def _is_library(name: str) -> bool:
    top = name.split(".", 1)[0]
    return top in sys.stdlib_module_names or top in _LIBRARIES or top in sys.builtin_module_names


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def locate(path: str) -> Any:
    """The object `path` names, found exactly as Hydra's instantiate finds it (attributes before
    submodules: `torchvision.models.alexnet` is the function, not the module)."""
    from dlrun.hydra_ext import locate as hydra_locate

    return hydra_locate(path)


def _plugin_home(target: str, modules: Iterable[str]) -> str | None:
    """The plugin module `target` is named under, if any."""
    return next((m for m in modules if target.startswith(m + ".")), None)


def _really_lives_in(target: str, module: str, key: str) -> None:
    """A plugin target must be a class or function defined in the plugin module itself, not a
    name it imported (`mymodels.os.system`, `mymodels.Path`)."""
    try:
        obj = locate(target)
    except (ImportError, AttributeError) as err:
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise ConfigError(
            f"{key}._target_={target!r} is not a class or function of plugin {module} "
            f"({reason}): check the spelling"
        ) from None
    home = getattr(obj, "__module__", None) or ""
    if not (inspect.isclass(obj) or inspect.isfunction(obj)) or not (home + ".").startswith(
        module + "."
    ):
        raise ConfigError(
            f"{key}._target_={target!r} is not allowed: it is {home}."
            f"{getattr(obj, '__qualname__', '?')}, not code of plugin {module}"
        )


def check(target: Any, key: str, *, from_file: str | None = None, typed_plugins: Any = ()) -> None:
    """Raise ConfigError unless `target` may be built (see the module docstring)."""
    if isinstance(target, str) and target in BUILTIN_TARGETS:
        return
    shown = f"{key}._target_={target!r}"
    if not isinstance(target, str) or any(
        not p.isidentifier() or p.startswith("_") for p in target.split(".")
    ):
        raise ConfigError(f"{shown} is not allowed: {_HINT}")
    typed = _as_list(typed_plugins)
    if from_file:  # a file may name plugin code only of the plugins this command lists
        home = _plugin_home(target, typed)
        if home is None:
            raise ConfigError(
                f"{shown} in {from_file} is not a dlrun built-in, and a file cannot choose code "
                "to run: if you trust it, pass its plugin yourself "
                f"(plugins=[{_module_of(target)}])"
            )
        _really_lives_in(target, home, key)
        return
    if any(target in names.values() for names in _REGISTERED.values()):
        return
    home = _plugin_home(target, [*_PLUGINS, *typed])
    if home is None:
        raise ConfigError(f"{shown} is not allowed{_did_you_mean(target)}: {_HINT}")
    _really_lives_in(target, home, key)


def _did_you_mean(target: str) -> str:
    """A typo of a built-in (torch.nn.MSELos) gets the name it was meant to be."""
    import difflib

    known = [*BUILTIN_TARGETS, *(t for names in _REGISTERED.values() for t in names.values())]
    close = difflib.get_close_matches(target, known, n=1, cutoff=0.85)
    return f" (did you mean {close[0]}?)" if close else ""


_HINT = (
    "dlrun builds only its registered built-ins (dlrun list) and code of plugin modules "
    "(plugins=[mymodels], or a package's dlrun.plugins entry point)"
)


def _module_of(target: str) -> str:
    return target.rsplit(".", 1)[0]


def check_callback(target: Any, key: str) -> None:
    """A Hydra callback must be dlrun's own, registered as a callback, or plugin code."""
    if target in BUILTINS["callback"] or target in registered("callback").values():
        return
    home = _plugin_home(target, _PLUGINS) if isinstance(target, str) else None
    if home is None:
        raise ConfigError(
            f"{key}._target_={target!r} is not allowed: Hydra callbacks must be dlrun's own or "
            "come from a plugin module (plugins=[mymodule])"
        )
    check(target, key)


def check_config(
    cfg: Any, path: str = "", *, from_file: str | None = None, typed_plugins: Any = ()
) -> None:
    """Check every `_target_` at any depth: under any key (`hydra` too), in lists, in `_args_`.
    A config is checked resolved: what is checked is what instantiate would see."""
    if OmegaConf.is_config(cfg):
        cfg = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    if isinstance(cfg, Mapping):
        for k, v in cfg.items():
            where = f"{path}.{k}" if path else str(k)
            if k == "_target_":
                check(v, path or "<root>", from_file=from_file, typed_plugins=typed_plugins)
            else:
                check_config(v, where, from_file=from_file, typed_plugins=typed_plugins)
    elif isinstance(cfg, list | tuple):
        for i, v in enumerate(cfg):
            check_config(v, f"{path}[{i}]", from_file=from_file, typed_plugins=typed_plugins)
