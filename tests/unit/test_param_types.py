"""A builder's typed parameters refuse config values of the wrong type (dlrun/param_types.py)."""

from typing import Literal

import pytest
import torch

from dlrun.errors import ConfigError
from dlrun.param_types import check_types


def builder(
    flag: bool = False,
    count: int = 1,
    rate: float = 0.5,
    name: str = "x",
    mode: Literal["auto", 1, 3] = "auto",
    sizes: list[int] | None = None,
    workers: int | Literal["auto"] = "auto",
    anything: torch.Tensor | None = None,
) -> None:
    """A stand-in for a dataset or model builder's signature."""


@pytest.mark.parametrize(
    "values",
    [
        {"flag": True, "count": 3, "rate": 1, "name": "a", "mode": 3, "sizes": [1, 2]},
        {"sizes": None, "workers": 4, "name": 2020},  # a number typed for a name: Hydra's int
        {"workers": "auto", "anything": "unchecked: not a type this module reads"},
    ],
)
def test_values_of_the_right_type_pass(values):
    check_types(builder, values, "data")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"flag": "randaugment"}, "data.flag='randaugment' is invalid: use true or false"),
        ({"count": True}, "data.count=True is invalid: use an integer"),
        ({"count": 1.5}, "data.count=1.5 is invalid: use an integer"),
        ({"rate": "fast"}, "data.rate='fast' is invalid: use a number"),
        ({"mode": 2}, "data.mode=2 is invalid: use one of auto, 1, 3"),
        ({"sizes": [1, "two"]}, "data.sizes=[1, 'two'] is invalid: use a list or null"),
        ({"sizes": 4}, "data.sizes=4 is invalid: use a list or null"),
        ({"workers": "many"}, "data.workers='many' is invalid: use an integer or one of auto"),
    ],
)
def test_a_wrong_type_is_one_line_naming_key_value_and_type(values, message):
    with pytest.raises(ConfigError) as err:
        check_types(builder, values, "data")
    assert str(err.value) == message
