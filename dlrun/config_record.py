"""A run's config as it is recorded (checkpoints, model.yaml, loggers) and as it is read back.

Recorded: resolved to plain containers, except environment lookups: `${oc.env:NAME}` stays
written as it is, so a token or password read from the environment never lands in a file.
Read back: a file's config is data, so its strings are taken literally - an interpolation in it
(`${oc.env:AWS_SECRET_ACCESS_KEY}`, a resolver) is not evaluated on the reader's machine.
"""

from __future__ import annotations

import re
from typing import Any

from omegaconf import DictConfig, OmegaConf

_NO_DEFAULT = object()


def _unresolved_env(key: str, default: Any = _NO_DEFAULT) -> str:
    """`${oc.env:NAME}` or `${oc.env:NAME,default}` as written (the default is no secret: it was
    typed in a config; keeping it lets `data.root: ${oc.env:DLRUN_DATA_DIR,./data}` say where)."""
    return "${oc.env:" + key + ("" if default is _NO_DEFAULT else f",{default}") + "}"


def recorded(cfg: DictConfig) -> dict[str, Any]:
    """The config resolved, with every `${oc.env:...}` (at any depth of interpolation) kept."""
    from dlrun.hydra_ext import env_lookups_as_written

    with env_lookups_as_written(_unresolved_env):
        plain = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(plain, dict)
    return plain


# A run of backslashes before `${`: doubled plus one, every `${` is literal and the
# backslashes before it stay what they were.
_OPENER = re.compile(r"(\\*)\$\{")


def literal(value: Any) -> Any:
    """A file's config with every string escaped for OmegaConf: it reads back exactly as stored,
    with no interpolation or resolver evaluated."""
    if isinstance(value, str):
        return _OPENER.sub(lambda m: "\\" * (2 * len(m.group(1)) + 1) + "${", value)
    if isinstance(value, dict):
        return {k: literal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [literal(v) for v in value]
    return value


# Model keys that fetch or read weights at build time: a model rebuilt from a file's config
# gets the file's own trained weights right after, so these are never taken from the file.
WEIGHT_SOURCES = {"pretrained": False, "weights": None}


def without_weight_sources(model: dict[str, Any]) -> dict[str, Any]:
    """A file's model section that downloads nothing and reads no other file when built."""
    return {k: WEIGHT_SOURCES.get(k, v) for k, v in model.items()}
