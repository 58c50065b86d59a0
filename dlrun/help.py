"""`dlrun --help`, fast: Hydra's own help deep-copies its config repository once per config
group (~2 s here with a few plugins installed), so dlrun lists the groups from conf/ itself and
composes the config once. Imports neither torch nor Hydra's launcher machinery.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

HEADER = """dlrun: train classic PyTorch models from Hydra configs.

Usage: dlrun [GROUP=OPTION ...] [key=value ...]
       dlrun -m optimizer=sgd,adam optimizer.lr=0.1,0.01    (a sweep: Hydra multirun)
       dlrun debug=smoke                                      (a seconds-long smoke run)
       dlrun mode=eval ckpt=RUN_FOLDER                        (evaluate a checkpoint)
       dlrun mode=predict ckpt=RUN_FOLDER input=PATH          (predictions.csv for new inputs)
       dlrun mode=export ckpt=RUN_FOLDER format=onnx          (model.onnx + model.yaml)
       dlrun ... resume=RUN_FOLDER|auto                       (continue a stopped run)
"""

FOOTER = """Each run writes checkpoints/, metrics.json, history.csv and dlrun.log into its folder under
outputs/. See README.md for every key. Hydra's own flags: dlrun --hydra-help."""


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
        "Pick one option per group, e.g. model=mlp (logger takes a list: logger=[csv,tensorboard]):",
        "",
    ]
    for group, options in config_groups(Path(conf_dir)).items():
        lines.append(f"{group}: {', '.join(options)}")
    lines += ["", "== Config ==", "Override anything, e.g. trainer.epochs=5 optimizer.lr=0.01:", ""]
    lines += [OmegaConf.to_yaml(cfg).rstrip(), "", FOOTER]
    return "\n".join(lines)
