"""dlrun/schema.py is the one definition of the run, trainer and sweep keys: conf/config.yaml's
defaults, validation, --help, docs/config.md and the loop's settings all follow it."""

import dataclasses
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dlrun import schema
from dlrun.cli import config_dir
from dlrun.errors import ConfigError
from dlrun.help import config_groups, render
from dlrun.schema import TrainerConfig
from dlrun.validate import RULES, validate_config

KEYS = list(schema.all_keys())


def test_generated_files_are_current():
    # conf/config.yaml's generated block and docs/config.md: `python -m dlrun.schema --write`
    assert schema.stale() == [], "run `python -m dlrun.schema --write` and commit the result"


def test_config_yaml_defaults_are_the_schemas(compose):
    tree = OmegaConf.to_container(compose(), resolve=False)
    for k in KEYS:
        value = tree
        for part in k.name.split("."):
            value = value[part]
        assert value == k.default, k.name


def test_every_trainer_and_sweep_key_is_in_the_schema(compose):
    cfg = compose()
    names = {k.name for k in KEYS}
    for section in ("trainer", "sweep"):
        flat = OmegaConf.to_container(cfg[section], resolve=False)
        stack = [(section, flat)]
        while stack:
            prefix, node = stack.pop()
            for name, value in node.items():
                if isinstance(value, dict) and f"{prefix}.{name}" not in names:
                    stack.append((f"{prefix}.{name}", value))
                else:
                    assert f"{prefix}.{name}" in names, f"{prefix}.{name} is not in dlrun/schema.py"


def test_every_top_level_key_that_is_no_group_is_in_the_schema(compose):
    # a key added to conf/config.yaml outside the schema (plugins: [], input: ...) fails here
    groups = {g.split("/")[0] for g in config_groups(Path(config_dir()))}
    top = {f.name for f in dataclasses.fields(schema.RunConfig)}
    assert set(compose()) - groups - {"hydra"} <= top


@pytest.mark.parametrize("k", [k for k in KEYS if k.rule], ids=lambda k: k.name)
def test_each_rule_accepts_its_default_and_validates_the_key(k):
    assert k.rule.ok(k.default), k.name
    assert RULES[k.name][1] == k.expected()


@pytest.mark.parametrize(
    "override,message",
    [
        ("trainer.early_stopping.min_delta=-1", "a number >= 0"),
        ("trainer.precision=16", "it must be 32, bf16 or fp16"),
        ("split=train", "split='train' is invalid: it must be test or val"),
        ("mode=fit", "it must be train, eval, predict or export"),
        ("trainer.deterministic=yes", "it must be true or false"),
        ("trainer.epochs=0", "it must be auto or a positive integer, e.g. trainer.epochs=10"),
    ],
)
def test_schema_rules_refuse_bad_values_in_one_line(compose, override, message):
    with pytest.raises(ConfigError) as err:
        validate_config(compose(override))
    assert override.split("=")[0] in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_trainer_settings_are_typed_and_resolved(compose):
    cfg = compose("trainer.early_stopping.patience=3", "trainer.keep_last_k=2")
    t = TrainerConfig.from_config(cfg.trainer)
    assert t.early_stopping.patience == 3 and t.keep_last_k == 2 and t.monitor == "auto"
    cpu = t.resolved("accuracy", "cpu")
    assert cpu.monitor == cpu.early_stopping.metric == "accuracy"
    assert cpu.finite_check_every == 1 and t.resolved("loss", "cuda").finite_check_every == 50
    chosen = TrainerConfig.from_config(
        compose("trainer.monitor=f1_macro", "trainer.finite_check_every=7").trainer
    ).resolved("accuracy", "cuda")
    assert chosen.monitor == chosen.early_stopping.metric == "f1_macro"
    assert chosen.finite_check_every == 7


def test_an_older_config_without_a_key_gets_the_default():
    t = TrainerConfig.from_config({"epochs": 3, "early_stopping": {"patience": 2}})
    assert t.epochs == 3 and t.early_stopping.patience == 2
    assert t.drop_last == "auto" and t.early_stopping.min_delta == 0.0


def test_help_lists_every_key_with_its_doc_and_current_value():
    page = render(config_dir(), ["trainer.epochs=7"])
    for k in KEYS:
        assert f"  {k.name}=" in page and k.doc in page, k.name
    assert "  trainer.epochs=7 " in page


def test_markdown_has_a_row_per_key():
    rows = [line for line in schema.markdown().splitlines() if line.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == [k.name for k in KEYS]


def test_a_new_field_is_a_key_everywhere():
    # adding a key is one field: it is listed, validated and written to the YAML block
    @dataclasses.dataclass
    class Extra:
        save_optimizer: bool = schema.key(True, "keep the optimizer state", schema.BOOL)

    (k,) = schema.all_keys(Extra, "trainer.")
    assert (k.name, k.default, k.expected()) == ("trainer.save_optimizer", True, "true or false")
    assert schema.config_block(Extra) == [
        "save_optimizer: true".ljust(30) + " # keep the optimizer state"
    ]


def test_auto_epochs_give_a_small_table_a_step_budget_with_early_stopping():
    from dlrun.schema import AUTO_EPOCHS, MAX_AUTO_EPOCHS, TABLE_STEPS, TrainerConfig

    auto = TrainerConfig()
    small = auto.with_budget(steps_per_epoch=5, min_steps=TABLE_STEPS)  # a 400-row table
    assert small.epochs == TABLE_STEPS // 5 and small.early_stopping.patience == 60
    assert auto.with_budget(1, TABLE_STEPS).epochs == MAX_AUTO_EPOCHS
    big = auto.with_budget(steps_per_epoch=2250, min_steps=TABLE_STEPS)  # 200,000 rows
    assert big.epochs == AUTO_EPOCHS and big.early_stopping.patience is None  # not slower
    assert auto.with_budget(2, None).epochs == AUTO_EPOCHS  # images, text: the default
    typed = TrainerConfig(epochs=5).with_budget(2, TABLE_STEPS)
    assert typed.epochs == 5 and typed.early_stopping.patience is None
