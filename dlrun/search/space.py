"""The search space: `hydra.sweeper.params` (and sweep overrides on the command line) in
Hydra's sweep syntax, as Optuna distributions - the syntax hydra-optuna-sweeper reads:

    choice(a, b, c)                 categorical
    range(1, 10) / range(0.1, 1, 0.1)   int / float with a step (the stop is included)
    interval(1e-4, 1e-1)            uniform float (int with int bounds)
    tag(log, interval(1e-4, 1e-1))  log-uniform
    x                               a fixed value, passed to every trial
"""

from __future__ import annotations

from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep, Transformer
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from dlrun.errors import ConfigError


def _choices(override: Override) -> CategoricalDistribution:
    return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))


def _range(override: Override, value: RangeSweep) -> BaseDistribution:
    if value.shuffle:
        return _choices(override)
    if any(isinstance(v, float) for v in (value.start, value.stop, value.step)):
        return FloatDistribution(value.start, value.stop, step=value.step)
    return IntDistribution(int(value.start), int(value.stop), step=int(value.step))


def _interval(value: IntervalSweep) -> BaseDistribution:
    log = "log" in value.tags
    if isinstance(value.start, int) and isinstance(value.end, int):
        return IntDistribution(value.start, value.end, log=log)
    return FloatDistribution(float(value.start), float(value.end), log=log)


def distribution(override: Override) -> BaseDistribution | str:
    """One override as an Optuna distribution, or its value as text if it is not a sweep."""
    if not override.is_sweep_override():
        return override.get_value_element_as_str()
    value = override.value()
    if override.is_choice_sweep():
        return _choices(override)
    if override.is_range_sweep():
        return _range(override, value)
    if override.is_interval_sweep():
        return _interval(value)
    raise ConfigError(f"{override.input_line}: this sweep is not supported by the Optuna search")


def search_space(arguments: list[str]) -> tuple[dict[str, BaseDistribution], dict[str, str]]:
    """(distributions, fixed values) by key, from `key=sweep` strings; a later one wins."""
    space: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(arguments):
        key = override.get_key_element()
        found = distribution(override)
        space.pop(key, None)
        fixed.pop(key, None)
        if isinstance(found, BaseDistribution):
            space[key] = found
        else:
            fixed[key] = found
    return space, fixed


def trial_overrides(params: dict[str, Any], fixed: dict[str, str]) -> list[str]:
    """The overrides of one trial: its sampled values, then the fixed ones."""
    return [f"{k}={v}" for k, v in params.items()] + [f"{k}={v}" for k, v in fixed.items()]
