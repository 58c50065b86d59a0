"""`dlrun --help`, fast: Hydra's own help deep-copies its config repository once per config
group (~2 s here with a few plugins installed), so dlrun lists the groups from conf/ itself and
composes the config once. Imports neither torch nor Hydra's launcher machinery.

The key list comes from dlrun/schema.py; Hydra's own help page (used with --config-dir,
conf/hydra/help/dlrun.yaml) takes the same header, keys and footer through the `dlrun_help`
resolver, so the text exists once.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlrun import schema

HEADER = """dlrun: train classic PyTorch models from Hydra configs.

Usage: dlrun [GROUP=OPTION ...] [key=value ...]
       dlrun -m optimizer=sgd,adam optimizer.lr=0.1,0.01    (a sweep: Hydra multirun)
       dlrun debug=smoke                                      (a seconds-long smoke run)
       dlrun mode=eval ckpt=RUN_FOLDER                        (evaluate a checkpoint)
       dlrun mode=predict ckpt=RUN_FOLDER input=PATH          (predictions.csv for new inputs)
       dlrun mode=export ckpt=RUN_FOLDER format=onnx          (model.onnx + model.yaml)
       dlrun ... resume=RUN_FOLDER|auto                       (continue a stopped run)
"""

FOOTER = """Each run writes checkpoints/, metrics.json, history.csv and dlrun.log into its folder
under outputs/. docs/config.md lists every key with its allowed values; README.md is the guide.
Hydra's own flags: dlrun --hydra-help.
dlrun list: every target dlrun may build (built-in and plugged in)."""

KEYS_TITLE = "dlrun's own keys (value, then meaning); e.g. trainer.epochs=5 seed=1:"
CONFIG_TITLE = "The config groups' keys as composed; override any, e.g. optimizer.lr=0.01:"


def _dotted(tree: dict[str, Any], name: str) -> Any:
    for part in name.split("."):
        tree = tree[part]
    return tree


def key_lines(cfg: DictConfig | None = None) -> list[str]:
    """One line per schema key: `name=value  doc`, the value from cfg (overrides shown, not
    resolved) or the schema's default."""
    tree = OmegaConf.to_container(cfg, resolve=False) if cfg is not None else None
    lines = []
    for k in schema.all_keys():
        try:
            value = k.default if tree is None else _dotted(tree, k.name)
        except (KeyError, TypeError):  # a --config-dir config without this key
            continue
        shown = value if isinstance(value, str) else schema.yaml_value(value)  # as typed
        lines.append(f"  {k.name}={shown}".ljust(40) + f" {k.doc}")
    return lines


@functools.cache  # Hydra resolves it several times a command, ~7 ms each
def text(part: str) -> str:
    """The `dlrun_help` resolver for Hydra's help page: header, keys or footer. `$` is doubled:
    Hydra passes the page through string.Template."""
    pieces = {"header": HEADER, "footer": FOOTER, "keys": "\n".join([KEYS_TITLE, *key_lines()])}
    return pieces[part].replace("$", "$$")


def config_groups(conf_dir: Path) -> dict[str, list[str]]:
    """group path -> options, from the YAML files under conf_dir (Hydra's own groups excluded)."""
    groups: dict[str, list[str]] = {}
    for yaml in sorted(conf_dir.rglob("*.yaml")):
        group = yaml.parent.relative_to(conf_dir).as_posix()
        if group != "." and not group.startswith("hydra"):
            groups.setdefault(group, []).append(yaml.stem)
    return groups


def render(conf_dir: str, overrides: list[str]) -> str:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    lines = [
        HEADER,
        "== Configuration groups ==",
        "Pick one option per group, e.g. model=mlp "
        "(logger takes a list: logger=[csv,tensorboard]):",
        "",
    ]
    for group, options in config_groups(Path(conf_dir)).items():
        lines.append(f"{group}: {', '.join(options)}")
    lines += ["", "== Plugins ==", _plugin_line(overrides)]
    lines += ["", "== Keys ==", KEYS_TITLE, *key_lines(cfg)]
    owned = {f.split(".")[0] for f in (k.name for k in schema.all_keys())}
    groups = OmegaConf.masked_copy(cfg, [k for k in cfg if k not in owned])
    lines += ["", "== Config ==", CONFIG_TITLE, "", OmegaConf.to_yaml(groups).rstrip(), "", FOOTER]
    return "\n".join(lines)


def _plugin_line(overrides: list[str]) -> str:
    """Plugin modules by name, not imported (importing one may import torch: see dlrun list)."""
    from dlrun import registry
    from dlrun.startup import argv_plugins

    named = {**registry.entry_point_modules(), **dict.fromkeys(argv_plugins(overrides), "plugins=")}
    if not named:
        return "none: plugins=[mymodule] (or a package's dlrun.plugins entry point) adds your own"
    return ", ".join(f"{m} ({how})" for m, how in named.items())


def render_registry(command_plugins: list[str]) -> str:
    """`dlrun list`: the built-in targets (plain names, no imports), then the plugins, imported to
    show the short names they register."""
    from dlrun import registry

    registry.activate(command_plugins)
    count = sum(len(t) for t in registry.BUILTINS.values())
    lines = [f"Built-in ({count}): a config's _target_ may name these; a checkpoint only these."]
    for group, targets in registry.BUILTINS.items():
        lines.append(f"  {group} ({len(targets)}):")
        lines += [f"    {t}" for t in targets]
    found = registry.plugins()
    lines += ["", f"Plugins ({len(found)}): their classes and functions may be _target_s."]
    if not found:
        lines.append("  none: plugins=[mymodule] or a package's dlrun.plugins entry point")
    for module, source in found.items():
        lines.append(f"  {module} ({source})")
    for group in registry.GROUPS:
        for name, target in registry.registered(group).items():
            option = "" if group in ("task", "callback") else f"  ({group}={name})"
            lines.append(f"    {group} {name}: {target}{option}")
    return "\n".join(lines)
