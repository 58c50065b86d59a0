"""A builder's typed parameters refuse config values of the wrong type, in one line.

Hydra's instantiate passes values as they are: `data.augment=randaugment` reached a `bool`
parameter as a non-empty (so true) string. Here each value given in a config node is checked
against its parameter's annotation before the builder is called. Annotations this does not
understand (torch's own aliases, classes) accept anything: the builder still checks those.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union

from dlrun.errors import ConfigError

_SEQUENCES = (list, tuple, Sequence, typing.Sequence, typing.List, typing.Tuple)  # noqa: UP006
_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _hints(target: Any) -> dict[str, Any]:
    fn = target.__init__ if isinstance(target, type) else target
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable names (torch's TYPE_CHECKING imports): check nothing
        return {}


def _fits(value: Any, hint: Any) -> bool | None:
    """Whether `value` fits `hint`; None when the hint is not one this module understands."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint in (int, float):  # an integer is a fine float; true/false is neither
        allowed = (int,) if hint is int else (int, float)
        return isinstance(value, allowed) and not isinstance(value, bool)
    if hint is str:  # a number typed for a name (a CSV column "2020") is Hydra's reading of it
        return isinstance(value, str | int | float) and not isinstance(value, bool)
    if origin is Literal:
        return value in args
    if origin in (Union, types.UnionType):
        answers = [_fits(value, a) for a in args]
        return True if any(answers) else (None if None in answers else False)
    if origin in _SEQUENCES or hint in _SEQUENCES:
        if not isinstance(value, list | tuple):
            return False
        inner = args[0] if args and (len(args) == 1 or args[-1] is Ellipsis) else None
        return None if inner is None else all(_fits(v, inner) is not False for v in value)
    return None


def _expected(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (Union, types.UnionType):
        return " or ".join(_expected(a) for a in args)
    if hint is type(None):
        return "null"
    if origin in _SEQUENCES or hint in _SEQUENCES:
        return "a list"
    return _NAMES.get(hint, getattr(hint, "__name__", str(hint)))


def check_types(target: Any, values: Mapping[str, Any], key: str) -> None:
    """Raise ConfigError for the first value that does not fit its parameter's annotation."""
    hints = _hints(target)
    for name, value in values.items():
        hint = hints.get(name)
        if hint is not None and _fits(value, hint) is False:
            raise ConfigError(f"{key}.{name}={value!r} is invalid: use {_expected(hint)}")
