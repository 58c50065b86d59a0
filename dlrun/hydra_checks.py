"""The nodes Hydra builds itself, checked like any other before Hydra builds them.

Hydra instantiates `hydra.callbacks`, `hydra.launcher` and `hydra.sweeper` (with nested
`_target_`s such as an Optuna sampler), hands `hydra.job_logging` / `hydra.hydra_logging` to
logging's dictConfig (whose `()` factories and handler classes build anything, and whose file
handlers open any path) and imports `pkg://` entries of `hydra.searchpath`. A config file may
choose among what is installed (a launcher plugin, an Optuna sampler) but never names other code,
never adds a search path, and logs only as dlrun's own logging config does: to the console and to
the run folder's log. No torch imports: this runs before every command's first job.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlrun import registry
from dlrun.errors import ConfigError

# Installed Hydra plugins: the packages Hydra itself discovers (an installed package is trusted).
_HYDRA_PLUGIN_HOMES = ("hydra._internal.core_plugins.", "hydra_plugins.")
# What an installed sweeper may build inside its own node (hydra-optuna-sweeper's samplers).
SWEEPER_PARTS = frozenset(
    f"optuna.samplers.{name}"
    for name in (
        "TPESampler",
        "RandomSampler",
        "CmaEsSampler",
        "NSGAIISampler",
        "MOTPESampler",
        "GridSampler",
        "QMCSampler",
    )
)
_HANDLERS = {"logging.StreamHandler", "logging.FileHandler"}
_STREAMS = {"ext://sys.stdout", "ext://sys.stderr"}
# The only log file: the run folder's <job name>.log, as conf/hydra/job_logging/dlrun.yaml says.
_LOG_FILE = "${hydra.runtime.output_dir}/${hydra.job.name}.log"
_JOB_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def check_hydra_nodes(config: DictConfig) -> None:
    """ConfigError for the first Hydra-built node that would build or write what it may not."""
    registry.activate_typed(config.get("plugins"), _typed(config, "task"))
    _check_searchpath(config)
    _check_places(config)
    _check_callbacks(config)
    for part in ("launcher", "sweeper"):
        _check_plugin_node(config, part)
    for part in ("job_logging", "hydra_logging"):
        _check_logging(config, part)


def _typed(config: DictConfig, which: str) -> list[str]:
    """The command line's overrides (`task`: the job's, `hydra`: hydra.* ones), as typed."""
    node = OmegaConf.select(config, f"hydra.overrides.{which}", default=None)
    return [str(o) for o in OmegaConf.to_container(node)] if node is not None else []


def _plain(node: Any, key: str) -> Any:
    """A node resolved, or a one-line refusal: a node that cannot be resolved before Hydra
    starts cannot be checked (an interpolation could hide a `_target_` until it is built)."""
    try:
        return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    except Exception as err:  # noqa: BLE001 (any resolver error: one line)
        reason = str(err).strip().splitlines()[0]
        raise ConfigError(
            f"{key} cannot be resolved before Hydra starts ({reason}): give it plain values"
        ) from None


def _check_searchpath(config: DictConfig) -> None:
    paths = OmegaConf.select(config, "hydra.searchpath", default=None)
    if paths and not _typed_search_path(_typed(config, "hydra")):
        _refuse_search_path(list(paths))


def _typed_search_path(overrides: Sequence[str]) -> bool:
    return any(o.lstrip("+~").startswith("hydra.searchpath") for o in overrides)


def _refuse_search_path(paths: Any) -> None:
    raise ConfigError(
        f"hydra.searchpath={paths} comes from a config file: a file cannot add where "
        "configs (or packages, pkg://) are loaded from; give hydra.searchpath on the command "
        "line or use --config-dir"
    )


def refuse_search_path_in_files(
    own_conf_dir: str, config_dirs: Sequence[str], config_name: str, overrides: Sequence[str]
) -> None:
    """Before Hydra composes: a --config-dir's primary config (one dlrun's own conf/ does not
    have, chosen with --config-name) that sets hydra.searchpath. Hydra imports a `pkg://` entry
    while composing, before the composed config can be checked, so the file is read here as
    plain YAML (nothing resolved)."""
    import yaml

    if _typed_search_path(overrides) or (Path(own_conf_dir) / f"{config_name}.yaml").is_file():
        return  # typed, or the primary config is dlrun's own (found before a --config-dir's)
    for folder in config_dirs:
        try:
            data = yaml.safe_load((Path(folder) / f"{config_name}.yaml").read_text())
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue  # no primary config there, or one Hydra reports in its own words
        hydra = data.get("hydra") if isinstance(data, dict) else None
        if isinstance(hydra, dict) and hydra.get("searchpath"):
            _refuse_search_path(hydra["searchpath"])


# Where Hydra writes and what it sets for a job: dlrun's own values, or what the command line says.
# (key -> the raw values dlrun's conf/ uses; `None` in a set: the key may be absent or null)
_PLACES = {
    "hydra.output_subdir": {".hydra"},
    "hydra.sweep.subdir": {"${hydra.job.num}", "${hydra.job.num}-${dlrun_uid:}"},
    "hydra.job.env_set": {None},
}


def _check_places(config: DictConfig) -> None:
    """A config file cannot move the run, sweep or .hydra/ folders (`hydra.output_subdir:
    ../../.ssh` would write config.yaml there) nor set the job's environment."""
    typed = [o.lstrip("+~") for o in _typed(config, "hydra")]
    own = _own_hydra_values()
    hydra = OmegaConf.to_container(config.hydra, resolve=False)  # as written: nothing resolved
    for key, allowed in {**_PLACES, **own}.items():
        if any(o.startswith((f"{key}=", f"{key}.")) for o in typed):
            continue
        raw = _raw(hydra, key.split(".")[1:])
        if (not raw and None in allowed) or (isinstance(raw, str) and raw in allowed):
            continue
        raise ConfigError(
            f"{key}={raw!r} comes from a config file: a file cannot choose where dlrun writes or "
            f"the job's environment; give {key}=... on the command line if you mean it"
        )
    name = str(OmegaConf.select(config, "hydra.job.name", default="dlrun"))
    if not _JOB_NAME.fullmatch(name):
        raise ConfigError(f"hydra.job.name={name!r} must be a plain name (it names the log file)")


def _raw(node: Any, path: list[str]) -> Any:
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _own_hydra_values() -> dict[str, set[Any]]:
    """hydra.run.dir and hydra.sweep.dir as dlrun's conf/config.yaml writes them (raw)."""
    from dlrun.file_config import conf_dir

    hydra = OmegaConf.to_container(OmegaConf.load(conf_dir() / "config.yaml"), resolve=False)
    hydra = hydra["hydra"]
    return {
        "hydra.run.dir": {hydra["run"]["dir"]},
        "hydra.sweep.dir": {hydra["sweep"]["dir"]},
    }


def _check_callbacks(config: DictConfig) -> None:
    """Each callback resolved on its own: one that cannot be resolved is refused, never
    checked unresolved (which let `x: ${node}` carry a `_target_` past the check)."""
    node = OmegaConf.select(config, "hydra.callbacks")
    for name in node or {}:
        key = f"hydra.callbacks.{name}"
        params = _plain(node[name], key)
        if params is None:  # switched off (hydra.callbacks.output_guard=null)
            continue
        target = params.get("_target_") if isinstance(params, dict) else None
        registry.check_callback(target, key)
        registry.check_config(params, key)


def _check_plugin_node(config: DictConfig, part: str) -> None:
    """hydra.launcher / hydra.sweeper: an installed Hydra plugin, holding only its own parts."""
    key = f"hydra.{part}"
    node = OmegaConf.select(config, key, default=None)
    if node is None:
        return
    plain = _plain(node, key)
    target = plain.get("_target_") if isinstance(plain, dict) else None
    if not isinstance(target, str) or not target.startswith(_HYDRA_PLUGIN_HOMES):
        raise ConfigError(
            f"{key}._target_={target!r} is not allowed: a {part} is an installed Hydra plugin "
            f"(pick one with hydra/{part}=NAME)"
        )
    _check_parts(plain, key, top=True)


def _check_parts(value: Any, key: str, top: bool = False) -> None:
    if isinstance(value, dict):
        target = value.get("_target_")
        if not top and target is not None and target not in SWEEPER_PARTS:
            registry.check(target, key)  # a dlrun built-in or plugin code, else refused
        for k, v in value.items():
            if k != "_target_":
                _check_parts(v, f"{key}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_parts(v, f"{key}[{i}]")


def _check_logging(config: DictConfig, part: str) -> None:
    """Console handlers and the run folder's log file only; no factories, no other classes."""
    key = f"hydra.{part}"
    node = OmegaConf.select(config, key, default=None)
    if node is None:
        return
    raw = OmegaConf.to_container(node, resolve=False)
    _refuse_factories(raw, key)
    for name, handler in (raw.get("handlers") or {}).items():
        where = f"{key}.handlers.{name}"
        cls = handler.get("class")
        if cls not in _HANDLERS:
            raise ConfigError(
                f"{where}.class={cls!r} is not allowed: dlrun logs to the console "
                "(logging.StreamHandler) and the run folder (logging.FileHandler) only"
            )
        own = "stream" if cls == "logging.StreamHandler" else "filename"
        extra = sorted(set(handler) - {"class", "formatter", "level", own})
        if extra:
            raise ConfigError(
                f"{where}.{extra[0]} is not allowed: a {cls} takes class, formatter, level and "
                f"{own} only"
            )
        if cls == "logging.StreamHandler" and handler.get("stream") not in _STREAMS:
            raise ConfigError(f"{where}.stream must be ext://sys.stdout or ext://sys.stderr")
        if cls == "logging.FileHandler":
            _check_log_file(config, handler.get("filename"), where)
    for name, formatter in (raw.get("formatters") or {}).items():
        if set(formatter) - {"format", "datefmt", "style"}:
            raise ConfigError(f"{key}.formatters.{name} takes format, datefmt and style only")
    if raw.get("filters"):
        raise ConfigError(f"{key}.filters is not allowed: dlrun's logging takes no filters")


def _refuse_factories(value: Any, key: str) -> None:
    """logging's `()` key calls any factory; `ext://` outside a stream imports any module."""
    if isinstance(value, str) and value in _STREAMS:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "()":
                raise ConfigError(f"{key}.() is not allowed: logging factories build any object")
            _refuse_factories(v, f"{key}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _refuse_factories(v, f"{key}[{i}]")
    elif (
        isinstance(value, str) and value.startswith(("ext://", "cfg://")) and value not in _STREAMS
    ):
        raise ConfigError(f"{key}={value!r} is not allowed: it names an object to import")


def _check_log_file(config: DictConfig, filename: Any, where: str) -> None:
    job_name = str(OmegaConf.select(config, "hydra.job.name", default=""))
    if filename != _LOG_FILE or not _JOB_NAME.fullmatch(job_name):
        raise ConfigError(
            f"{where}.filename={filename!r} is not allowed: the log is written inside the run "
            f"folder only ({_LOG_FILE}, hydra.job.name a plain name)"
        )
