"""Cheap checks on the composed config, run before anything heavy is imported.

The run, trainer and sweep keys' rules come from dlrun/schema.py; the groups' keys are checked
here. Each failure is a ConfigError naming the key, the bad value and the fix, printed as one line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlrun import schema
from dlrun.errors import ConfigError
from dlrun.schema import is_number, positive_int, positive_number

_MISSING = object()


def _get(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=False)


def _fraction(v: Any) -> bool:
    return is_number(v) and 0 < v < 1


def _widths(v: Any) -> bool:
    """One positive width (cnn, lstm) or a list of them (mlp, autoencoder; [] = no hidden layer)."""
    if OmegaConf.is_list(v) or isinstance(v, list):
        return all(positive_int(w) for w in v)
    return positive_int(v)


def _schema_rules() -> dict[str, tuple[Callable[[Any], bool], str]]:
    """The run, trainer and sweep keys' rules, from their one definition in dlrun/schema.py."""
    return {k.name: (k.rule.ok, k.expected()) for k in schema.all_keys() if k.rule is not None}


# key -> (rule, what a good value looks like). Keys absent from the config are skipped.
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    **_schema_rules(),
    "optimizer.lr": (positive_number, "a positive number, e.g. optimizer.lr=0.001"),
    "data.val_fraction": (
        lambda v: v == "auto" or _fraction(v),
        "auto or a fraction strictly between 0 and 1, e.g. data.val_fraction=0.1",
    ),
    "data.test_fraction": (
        _fraction,
        "a fraction strictly between 0 and 1, e.g. data.test_fraction=0.2",
    ),
    "data.task": (
        lambda v: v in {"auto", "classification", "regression"},
        "auto, classification or regression",
    ),
    "data.impute": (
        lambda v: v in {None, "mean", "median", "most_frequent"},
        "null, mean, median or most_frequent",
    ),
    "data.stratify": (lambda v: isinstance(v, bool), "true or false"),
    "data.skip_bad": (lambda v: isinstance(v, bool), "true or false"),
    "loss.class_weights": (
        lambda v: (
            v is None
            or v == "auto"
            or (
                (OmegaConf.is_list(v) or isinstance(v, list)) and all(positive_number(w) for w in v)
            )
        ),
        "null, auto (inverse class frequency) or a list of positive numbers, one per class",
    ),
    # Group-specific keys: checked only when the chosen option has them.
    "scheduler.step_size": (
        positive_int,
        "a positive integer (epochs between lr decays), e.g. scheduler.step_size=10",
    ),
    "loss.label_smoothing": (
        lambda v: is_number(v) and 0 <= v <= 1,
        "a number from 0 to 1, e.g. loss.label_smoothing=0.1",
    ),
    "model.hidden": (
        _widths,
        "positive integer widths, e.g. model.hidden=[256,128] (mlp) or model.hidden=256 (cnn)",
    ),
    "device.name": (
        lambda v: (
            isinstance(v, str) and (v in {"auto", "cpu", "cuda", "mps"} or v.startswith("cuda:"))
        ),
        "auto, cpu, cuda, cuda:N or mps",
    ),
}


# What each mode needs besides the defaults (checked before anything is imported).
_MODE_NEEDS = {
    "predict": ("ckpt", "mode=predict needs ckpt=RUN_FOLDER (or a .pt file) and input=PATH"),
    "export": (
        "ckpt",
        "mode=export needs ckpt=RUN_FOLDER (or a .pt file) and format=onnx|torchscript",
    ),
}


def _check_mode(cfg: DictConfig) -> None:
    need = _MODE_NEEDS.get(_get(cfg, "mode"))
    if need and not _get(cfg, need[0]):
        raise ConfigError(need[1])


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first missing or out-of-range value."""
    from_checkpoint = _get(cfg, "mode") == "eval" and _get(cfg, "ckpt")  # its data section
    if _get(cfg, "mode") in _MODE_NEEDS or from_checkpoint:  # data.path=??? belongs to training
        _check_mode(cfg)
        cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "data"])
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        key = missing[0]
        raise ConfigError(f"{key} is required but not set: add {key}=... to the command line")
    for key, (rule, expected) in RULES.items():
        value = _get(cfg, key)
        if value is _MISSING:
            continue
        if not rule(value):
            raise ConfigError(f"{key}={value!r} is invalid: it must be {expected}")
