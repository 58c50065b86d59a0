"""Image models built from their real configs with data-decided facts: shapes, stems, refusals."""

import pytest
import torch
from torch import nn

from dlrun import build
from dlrun.errors import ConfigError
from dlrun.models.vision import CNN, LeNet

MODELS = ["lenet", "cnn", "mlp", "resnet18", "resnet34", "vgg11", "alexnet"]
SHAPES = [(1, 28, 28), (3, 32, 32)]


def facts(shape, classes=10):
    return {"input_shape": shape, "in_features": shape[0] * shape[1] * shape[2],
            "in_channels": shape[0], "image_size": shape[-1], "num_classes": classes,
            "out_features": classes, "normalization": {"mean": [0.5], "std": [0.5]}}  # fmt: skip


@pytest.mark.parametrize("shape", SHAPES, ids=["1x28x28", "3x32x32"])
@pytest.mark.parametrize("name", MODELS)
def test_every_model_gives_logits_for_every_image_shape(compose, name, shape):
    cfg = compose(f"model={name}")
    torch.manual_seed(0)
    model = build.build_object(cfg.model, "model", facts(shape, classes=7))
    model.train()
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, 7)
    out.sum().backward()  # trainable end to end


def test_flattened_sizes_are_computed_from_the_input():
    assert LeNet((1, 28, 28), 10).fc1.in_features == 320  # the seed's 320
    assert LeNet((3, 32, 32), 10).fc1.in_features == 500
    assert CNN((3, 32, 32), 10).classifier[1].in_features == 64 * 8 * 8  # not the seed's 64*5*5
    assert CNN((1, 28, 28), 10).classifier[1].in_features == 64 * 7 * 7


def test_resnet_stem_follows_the_image_size(compose):
    cfg = compose("model=resnet18")
    small = build.build_object(cfg.model, "model", facts((1, 32, 32)))
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1)
    assert small.conv1.in_channels == 1 and isinstance(small.maxpool, nn.Identity)
    large = build.build_object(cfg.model, "model", facts((3, 224, 224)))
    assert large.conv1.kernel_size == (7, 7) and isinstance(large.maxpool, nn.MaxPool2d)
    assert large.fc.out_features == 10


def test_too_small_images_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="model=lenet cannot take"):
        LeNet((1, 8, 8), 10)


def test_bad_stem_is_refused(compose):
    cfg = compose("model=vgg11", "model.stem=tiny")
    with pytest.raises(ConfigError, match="model.stem='tiny' is invalid"):
        build.build_object(cfg.model, "model", facts((3, 32, 32)))


def test_pretrained_without_weights_or_network_is_one_line(compose, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty weights cache
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # offline, even on a networked machine
    cfg = compose("model=resnet18", "model.pretrained=true")
    with pytest.raises(ConfigError) as err:
        build.build_object(cfg.model, "model", facts((3, 32, 32)))
    message = str(err.value)
    assert (
        "\n" not in message and "model.pretrained=true needs resnet18's ImageNet weights" in message
    )
    assert str(tmp_path) in message and "model.pretrained=false" in message
