"""Every option of every config group composes, validates and names only allowed targets."""

from pathlib import Path

import pytest

from dlrun.build import check_all_targets
from dlrun.cli import config_dir
from dlrun.validate import validate_config

GROUPS = [
    "model",
    "data",
    "optimizer",
    "loss",
    "scheduler",
    "device",
    "debug",
    "experiment",
    "logger",
    "hparams_search",
]
# Options that need a value from the user before they validate.
REQUIRED = {
    ("data", "csv"): ["data.path=x.csv", "data.target=y"],
    ("data", "image_folder"): ["data.path=pics"],
    ("data", "text_csv"): ["data.path=x.csv"],
}


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(config_dir()) / group).glob("*.yaml"))


ALL = [(g, o) for g in GROUPS for o in options(g)]


def test_every_group_has_options():
    for group in GROUPS:
        assert options(group), group


@pytest.mark.parametrize("group,option", ALL, ids=[f"{g}={o}" for g, o in ALL])
def test_option_composes_and_validates(compose, group, option):
    cfg = compose(f"{group}={option}", *REQUIRED.get((group, option), []))
    validate_config(cfg)
    check_all_targets(cfg)


def test_every_yaml_starts_with_a_comment():
    for path in Path(config_dir()).rglob("*.yaml"):
        first = path.read_text().lstrip().splitlines()[0]
        if first.startswith("# @package"):
            first = path.read_text().lstrip().splitlines()[1]
        assert first.startswith("#"), f"{path} must start with a one-line comment"


def test_defaults(compose):
    cfg = compose()
    assert cfg.model._target_.endswith("MLP")
    assert cfg.data._target_.endswith("digits")
    assert cfg.loss.name == "auto"


@pytest.mark.parametrize(
    "overrides",
    [
        ["seed=7"],
        ["scheduler=step", "scheduler.step_size=1"],
        ["loss=cross_entropy", "loss.label_smoothing=1"],
        ["model=mlp", "model.hidden=[]"],
        ["model=mlp", "model.hidden=[256,128]"],
        ["model=lstm", "model.hidden=64"],
    ],
)
def test_group_specific_rules_accept_good_values(compose, overrides):
    validate_config(compose(*overrides))
