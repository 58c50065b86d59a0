"""data.augment policies (torchvision.transforms.v2) and MixUp/CutMix on real image batches (the
tests' MNIST idx and CIFAR pickle files, read by dlrun's own loaders), and the soft targets they
make reaching the loss and the metrics."""

import pytest
import torch
from torch import nn

from dlrun.data import vision
from dlrun.data.augment import POLICY_DRAWS, BatchMixer, ImageBatchTransform
from dlrun.tasks.metrics import classification_metrics
from tests.datasets import write_cifar, write_mnist

ARGS = {"download": False, "val_fraction": 0.1, "seed": 0}
POLICIES = ["trivialaugment", "randaugment", "autoaugment"]


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    """A real uint8 batch of each kind: MNIST (1 channel, 28 px) and CIFAR-10 (3, 32 px)."""
    root = tmp_path_factory.mktemp("data")
    write_mnist(root, n_train=64, n_test=8)
    write_cifar(root, n_train=64, n_test=8)
    vision.VERIFY_MD5 = False
    try:
        cifar = vision.cifar10(str(root), augment="none", **ARGS)
    finally:
        vision.VERIFY_MD5 = True
    mnist = vision.mnist(str(root), **ARGS)
    return {
        "mnist": {k: v[:32] for k, v in mnist.train.tensors.items()},
        "cifar": {k: v[:32] for k, v in cifar.train.tensors.items()},
    }


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("kind", ["mnist", "cifar"])
def test_each_policy_changes_training_batches_repeatably(batches, policy, kind):
    batch = batches[kind]
    c = batch["x"].shape[1]
    tf = ImageBatchTransform([0.5] * c, [0.25] * c, policy=policy)
    torch.manual_seed(3)
    first = tf(batch)["x"]
    torch.manual_seed(3)
    again = tf(batch)["x"]
    plain = tf.without_augmentation()(batch)["x"]
    assert first.shape == batch["x"].shape and first.dtype == torch.float32
    assert torch.equal(first, again)  # seeded: resumable and reproducible
    changed = [not torch.equal(a, b) for a, b in zip(first, plain, strict=True)]
    assert sum(changed) >= len(changed) // 4, f"{policy} left {changed.count(False)} untouched"
    assert torch.equal(tf.without_augmentation()(batch)["x"], plain)  # eval never augments


def test_policy_draws_differ_between_groups_of_one_batch(batches):
    """One v2 call draws one operation; the batch's POLICY_DRAWS groups each draw their own."""
    x = batches["cifar"]["x"][:1].repeat(4 * POLICY_DRAWS, 1, 1, 1)  # the same image 32 times
    tf = ImageBatchTransform([0.5] * 3, [0.25] * 3, policy="trivialaugment")
    torch.manual_seed(0)
    out = tf({"x": x})["x"]
    groups = out.split(4)
    assert all(torch.equal(g[0], g[-1]) for g in groups)  # one draw within a group
    assert len({g[0].sum().item() for g in groups}) > 1  # different draws between groups


def test_mixup_is_a_convex_mix_with_matching_soft_targets(batches):
    batch = batches["cifar"]
    tf = ImageBatchTransform([0.5] * 3, [0.25] * 3, mixer=BatchMixer(10, mixup=0.4, cutmix=0))
    torch.manual_seed(1)
    out = tf(batch)
    x = tf.without_augmentation()(batch)["x"]
    y = nn.functional.one_hot(batch["y"], 10).float()
    assert out["y"].shape == (32, 10) and torch.allclose(out["y"].sum(1), torch.ones(32))
    # v2.MixUp mixes each image with its neighbour in the batch (rolled by one), weight lam
    lam = float((out["x"] - x.roll(1, 0)).flatten().dot((x - x.roll(1, 0)).flatten())) / float(
        (x - x.roll(1, 0)).pow(2).sum()
    )
    torch.testing.assert_close(out["x"], lam * x + (1 - lam) * x.roll(1, 0), atol=1e-4, rtol=0)
    torch.testing.assert_close(out["y"], lam * y + (1 - lam) * y.roll(1, 0), atol=1e-4, rtol=0)


def test_cutmix_pastes_a_box_and_weights_labels_by_its_area(batches):
    batch = batches["mnist"]
    tf = ImageBatchTransform([0.5], [0.25], mixer=BatchMixer(10, mixup=0, cutmix=1.0))
    torch.manual_seed(2)
    out = tf(batch)
    x = tf.without_augmentation()(batch)["x"]
    own = (out["x"] == x).all(1)  # (B, H, W): pixels kept from the image itself
    other = (out["x"] == x.roll(1, 0)).all(1)
    assert bool((own | other).all())  # every pixel is the image's or its neighbour's
    area = 1 - (~own).float().mean()  # the share of the image kept (one box, same for all)
    y = nn.functional.one_hot(batch["y"], 10).float()
    expected = area * y + (1 - area) * y.roll(1, 0)
    differs = batch["y"] != batch["y"].roll(1, 0)  # where the labels differ the weight shows
    torch.testing.assert_close(out["y"][differs], expected[differs], atol=0.02, rtol=0)


def test_soft_targets_reach_the_loss_and_the_metrics():
    logits = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    hard = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    soft = 0.7 * nn.functional.one_hot(hard, 4).float() + 0.3 * torch.full((8, 4), 0.25)
    ce = nn.CrossEntropyLoss()
    expected = -(soft * logits.log_softmax(1)).sum(1).mean()
    torch.testing.assert_close(ce(logits, soft), expected)
    preds = logits.argmax(1)
    assert classification_metrics(preds, soft, 4) == classification_metrics(preds, hard, 4)


def test_an_evaluation_of_mixed_batches_reports_every_metric(batches):
    """A split whose transform mixes (a plugin's, or training batches evaluated) still gives the
    classification metrics, read against each sample's most probable class."""
    from dlrun.data.bundle import DataBundle, InMemorySplit
    from dlrun.tasks.classification import ClassificationTask

    mixing = ImageBatchTransform([0.5], [0.25], mixer=BatchMixer(10, mixup=0.4, cutmix=0))
    split = InMemorySplit(batches["mnist"], mixing)
    data = DataBundle(split, split, split, "classification", (1, 28, 28), num_classes=10)
    from dlrun.models.vision import LeNet

    model = LeNet((1, 28, 28), 10)
    task = ClassificationTask(model, nn.CrossEntropyLoss(), data)
    with torch.no_grad():
        metrics = task.evaluate(split.batches(8))
    assert 0 <= metrics["accuracy"] <= 1 and "top5_accuracy" in metrics and metrics["loss"] > 0
