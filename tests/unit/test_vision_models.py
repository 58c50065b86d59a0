"""Image models built from their real configs with data-decided facts: shapes, stems, refusals."""

import pytest
import torch
from torch import nn

from dlrun import build
from dlrun.data.bundle import DataBundle, InMemorySplit
from dlrun.errors import ConfigError, ImagesTooSmall
from dlrun.models.vision import CNN, LeNet

MODELS = ["lenet", "cnn", "mlp", "resnet18", "resnet34", "vgg11", "alexnet"]
SHAPES = [(1, 28, 28), (3, 32, 32)]


def facts(shape, classes=10):
    """What build_task offers an image model: the bundle's facts and the task's output width."""
    return {**tiny_bundle(shape).model_facts(), "num_classes": classes, "out_features": classes}


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
    with pytest.raises(ImagesTooSmall, match=r"^\(1, 8, 8\) images are too small"):
        LeNet((1, 8, 8), 10)  # a plain ValueError: build names the model and the fix


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


IMAGE_MODELS = ["lenet", "cnn", "resnet18", "resnet34", "resnet9", "vgg11", "alexnet"]
FEATURE_MODELS = ["mlp", "linear", "perceptron", "autoencoder", "lstm", "embedding_bag"]


@pytest.mark.parametrize("name", IMAGE_MODELS + FEATURE_MODELS)
def test_models_that_read_images_are_known_before_they_are_built(compose, name):
    assert build.model_reads_images(compose(f"model={name}").model) == (name in IMAGE_MODELS)


def tiny_bundle(shape, n=4):
    def split():
        return InMemorySplit({"x": torch.zeros(n, *shape), "y": torch.arange(n) % 2})

    return DataBundle(split(), split(), split(), "classification", shape, num_classes=2)


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_image_model_on_features_is_one_line_naming_the_fix(compose, name):
    cfg = compose(f"model={name}")  # data=digits: 64 features unless data.as_images=true
    with pytest.raises(ConfigError) as err:
        build.build_task(cfg, tiny_bundle((64,)), torch.device("cpu"))
    message = str(err.value)
    assert f"model={name} needs images but data=digits gives 64 features" in message
    assert "use data.as_images=true" in message and "\n" not in message


@pytest.mark.parametrize("name", ["lenet", "vgg11", "alexnet"])
def test_too_small_images_get_a_fix_that_fits_the_data(compose, name):
    with pytest.raises(ConfigError) as err:  # digits as images: a fixed 8x8
        build.build_task(compose(f"model={name}"), tiny_bundle((1, 8, 8)), torch.device("cpu"))
    assert f"model={name} cannot take (1, 8, 8) images" in str(err.value)
    assert "a model made for small images (model=cnn" in str(err.value)
    folder = compose(f"model={name}", "data=image_folder", "data.path=pics", "data.image_size=12")
    with pytest.raises(ConfigError, match=r"raise data.image_size \(now 12\)"):
        build.build_task(folder, tiny_bundle((3, 12, 12)), torch.device("cpu"))
