"""data.augment, data.mixup and data.cutmix through the real `dlrun` command."""

import pytest
import torch

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


def test_a_resumed_run_with_a_policy_and_mixing_is_bit_exact(dlrun, tmp_path, mnist):
    """Policies and MixUp/CutMix draw from torch's seeded generator, which checkpoints save: a run
    stopped after its first epoch and resumed ends with the weights of one that never stopped."""
    args = [*mnist, "data.augment=randaugment", "data.mixup=0.2", "data.cutmix=1.0"]
    args += ["trainer.epochs=2", "trainer.batch_size=8", "trainer.progress=false"]
    dlrun(*args)
    stopped = dlrun(*args, failpoints="sigint_after_validation:1", expect_fail=True)
    assert stopped.returncode == 130, stopped.stderr
    reference, run = run_dirs(tmp_path)
    dlrun(*args, f"resume={run}")
    weights = [
        torch.load(r / "checkpoints" / "last.pt", weights_only=True)["model"]
        for r in (reference, run)
    ]
    assert read_metrics(run)["epochs_run"] == 2
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
