"""The new keys are validated before anything heavy runs: one line naming key and good values."""

import pytest

from dlrun.errors import ConfigError
from dlrun.validate import validate_config

CSV = ("data=csv", "data.path=t.csv", "data.target=y")


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            (*CSV, "data.task=guess"),
            "data.task='guess' is invalid: it must be auto, classification",
        ),
        ((*CSV, "data.impute=avg"), "data.impute='avg' is invalid: it must be null, mean, median"),
        (
            (*CSV, "data.stratify=maybe"),
            "data.stratify='maybe' is invalid: it must be true or false",
        ),
        (
            ("trainer.drop_last=sometimes",),
            "trainer.drop_last='sometimes' is invalid: it must be auto",
        ),
        (
            ("loss.class_weights=[1,-2]",),
            "loss.class_weights=[1, -2] is invalid: it must be null, auto",
        ),
        (("data=image_folder", "data.path=p", "data.skip_bad=1"), "data.skip_bad=1 is invalid"),
    ],
)
def test_bad_values_of_the_new_keys_are_one_line(compose, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate_config(compose(*overrides))


def test_good_values_pass(compose):
    validate_config(
        compose(
            *CSV,
            "data.impute=median",
            "data.categorical=[a]",
            "data.task=auto",
            "loss.class_weights=auto",
            "trainer.drop_last=true",
        )
    )
