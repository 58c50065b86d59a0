"""data.augment, data.mixup and data.cutmix through the real `dlrun` command."""

import pytest

from tests.conftest import read_metrics, run_dirs
from tests.datasets import write_image_folder, write_mnist


@pytest.fixture
def mnist(tmp_path):
    write_mnist(tmp_path / "data", n_train=48, n_test=16)
    return ["model=lenet", "data=mnist", f"data.root={tmp_path / 'data'}", "data.download=false"]


@pytest.mark.parametrize("policy", ["trivialaugment", "randaugment", "autoaugment"])
def test_policies_with_mixup_and_cutmix_train(dlrun, tmp_path, mnist, policy):
    dlrun(*mnist, f"data.augment={policy}", "data.mixup=0.2", "data.cutmix=1.0", "debug=smoke")
    m = read_metrics(run_dirs(tmp_path)[0])
    assert m["status"] == "completed" and 0 <= m["test"]["accuracy"] <= 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("data.augment=randaugmnt", "data.augment='randaugmnt' is invalid: use one of none, basic"),
        ("data.augment=true", "data.augment=True is invalid: use one of none, basic"),
        ("data.mixup=strong", "data.mixup='strong' is invalid: use a number"),
        ("data.flip=sometimes", "data.flip='sometimes' is invalid: use true or false"),
    ],
)
def test_a_value_of_the_wrong_type_is_one_line(dlrun, mnist, value, expected):
    proc = dlrun(*mnist, value, "debug=smoke", expect_fail=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"dlrun: error: {expected}" in proc.stderr


def test_binary_logit_trains_on_mixed_soft_targets(dlrun, tmp_path):
    write_image_folder(tmp_path / "pics", ["cat", "dog"], per_class=8, size=16)
    dlrun(
        "model=cnn",
        "data=image_folder",
        f"data.path={tmp_path / 'pics'}",
        "data.image_size=16",
        "data.mixup=0.4",
        "loss=bce_with_logits",
        "debug=smoke",
    )
    m = read_metrics(run_dirs(tmp_path)[0])
    assert m["status"] == "completed" and len(m["test"]["confusion_matrix"]) == 2
