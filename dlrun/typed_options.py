"""Unknown config group options and keys on the command line: one line naming the closest valid
names (difflib), before Hydra composes, instead of Hydra's multi-line listing and exit 1.

Checked: `group=option` for dlrun's groups (conf/<group>/ and a --config-dir's, plus options
plugins registered), and `section.key=value` for dlrun's own sections (run, trainer, sweep keys
of dlrun/schema.py), appended ones too (`+trainer.x=1` would be silently ignored).
Anything else (hydra/*, a group's own keys) is left to Hydra.
No torch imports: this runs before every command.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from dlrun import schema
from dlrun.errors import ConfigError


def user_config_dirs(args: Sequence[str]) -> list[str]:
    """The --config-dir / -cd folders of a command line."""
    found = []
    for i, arg in enumerate(args):
        if arg.startswith("--config-dir="):
            found.append(arg.split("=", 1)[1])
        elif arg in ("--config-dir", "-cd") and i + 1 < len(args):
            found.append(args[i + 1])
    return found


def config_name(args: Sequence[str]) -> str:
    """The primary config's name (--config-name / -cn), `config` by default."""
    name = "config"
    for i, arg in enumerate(args):
        if arg.startswith("--config-name="):
            name = arg.split("=", 1)[1]
        elif arg in ("--config-name", "-cn") and i + 1 < len(args):
            name = args[i + 1]
    return name.removesuffix(".yaml")


def check(args: Sequence[str], conf_dir: str) -> None:
    """ConfigError for the first unknown group option or dlrun key in `args` (overrides)."""
    dirs = [Path(conf_dir), *(Path(d) for d in user_config_dirs(args))]
    groups = {p.name for d in dirs if d.is_dir() for p in d.iterdir() if p.is_dir()} - {"hydra"}
    keys = {k.name for k in schema.all_keys()}
    sections = {k.split(".", 1)[0] for k in keys if "." in k}
    for arg in args:
        if arg.startswith(("-", "~")) or "=" not in arg:
            continue
        appended, key = arg.startswith("+"), arg.split("=", 1)[0].lstrip("+")
        if key in groups and not appended:
            _check_option(key, arg, _options(key, dirs))
        elif "." in key and key.split(".", 1)[0] in sections and key not in keys:
            _refuse_key(key, keys)


def _options(group: str, dirs: Iterable[Path]) -> set[str]:
    names = {p.stem for d in dirs for p in (d / group).glob("*.yaml")}
    try:
        from hydra.core.config_store import ConfigStore

        names |= {n.removesuffix(".yaml") for n in ConfigStore.instance().list(group)}
    except OSError:  # no plugin registered an option in this group
        pass
    return names


def _values(arg: str) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        value = OverridesParser.create().parse_override(arg).value()
    except Exception:  # noqa: BLE001 (malformed: Hydra reports it in its own words)
        return []
    options = value.list if hasattr(value, "list") else [value]
    flat: list[Any] = []
    for option in options:
        flat += option if isinstance(option, list) else [option]
    return flat


def _check_option(group: str, arg: str, options: set[str]) -> None:
    for value in _values(arg):
        if not isinstance(value, str) or value in options or "${" in value:
            continue
        close = difflib.get_close_matches(value, sorted(options), n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise ConfigError(
            f"{group}={value} is not a {group} option: {hint}the options are "
            f"{', '.join(sorted(options))} (dlrun --help lists them)"
        )


def _refuse_key(key: str, keys: set[str]) -> None:
    close = difflib.get_close_matches(key, sorted(keys), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}?" if close else "dlrun --help lists the keys"
    raise ConfigError(f"{key} is not a dlrun key: {hint} (docs/config.md has them all)")
