"""Image classifiers: the seeds' LeNet and CIFAR CNN, and torchvision's ResNet/VGG/AlexNet sized
from the data (input channels, image size, classes). Every model returns logits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlrun.errors import ImagesTooSmall

log = logging.getLogger("dlrun")

# Images up to this many pixels wide get the small-image stem when `stem: auto`.
SMALL_IMAGE_MAX = 64


def flat_size(
    features: nn.Module | Callable[[Tensor], Tensor],
    input_shape: Sequence[int],
    device: str = "cpu",
) -> int:
    """Width of `features`' flattened output for one input of `input_shape` (C, H, W).

    device="meta" checks the shapes of a model laid out on the meta device without computing."""
    was_training = isinstance(features, nn.Module) and features.training
    if was_training:
        features.eval()  # batch norm: no update of (pretrained) running statistics
    try:
        with torch.no_grad():
            x = torch.zeros(1, *input_shape, device=device)
            return int(features(x).flatten(1).shape[1])
    except RuntimeError:
        raise ImagesTooSmall(tuple(input_shape)) from None
    finally:
        if was_training:
            features.train()


class LeNet(nn.Module):
    """The seeds' MNIST Net: conv 10@5x5 -> pool -> conv 20@5x5 -> Dropout2d -> pool -> fc 50 ->
    fc classes. The fc input (320 on 28x28) is computed from the input shape."""

    dlrun_reads_images = True  # sized from input_shape, but convolves (C, H, W) images

    def __init__(self, input_shape: Sequence[int], num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(input_shape[0], 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d(dropout)
        self.fc1 = nn.Linear(flat_size(self.features, input_shape), 50)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(50, num_classes)

    def features(self, x: Tensor) -> Tensor:  # (B, C, 28, 28) -> (B, 320)
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        return x.flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.drop(F.relu(self.fc1(self.features(x)))))


class CNN(nn.Module):
    """The seeds' CIFAR CNN: conv 32@3x3 -> pool -> conv 64@3x3 -> pool -> dropout -> fc `hidden` ->
    dropout -> fc classes. The seed hard-coded a wrong 64*5*5 fc input; here it is computed
    (64*8*8 on 32x32, 64*7*7 on 28x28). Logits for cross-entropy over all classes."""

    dlrun_reads_images = True  # sized from input_shape, but convolves (C, H, W) images

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden: int = 500,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(input_shape[0], 32, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(flat_size(self.features, input_shape), hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


# --- torchvision models -------------------------------------------------------------------------


def _small_stem(stem: str, image_size: int) -> bool:
    if stem not in {"auto", "small", "imagenet"}:
        raise ValueError(f"stem={stem!r} is invalid: use auto, small or imagenet")
    return stem == "small" or (stem == "auto" and image_size <= SMALL_IMAGE_MAX)


def imagenet_weights(arch: str) -> dict[str, Tensor]:
    """torchvision's default ImageNet weights for `arch`, from torch's hub cache or downloaded.

    Without them (offline and not cached) this is a one-line ValueError, never a hang."""
    import torchvision.models as tvm
    from torch.hub import get_dir

    from dlrun.download import last_line, socket_timeout

    weights = tvm.get_model_weights(arch).DEFAULT
    cache = f"{get_dir()}/checkpoints"
    try:
        with socket_timeout():
            return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as err:
        file = weights.url.rsplit("/", 1)[-1]
        raise ValueError(
            f"pretrained=true needs {arch}'s ImageNet weights {file}, which are not in {cache} "
            f"and could not be downloaded ({last_line(err)}): copy the file there (or set "
            "TORCH_HOME), or use pretrained=false"
        ) from None


def _torchvision_model(arch: str, num_classes: int, pretrained: bool) -> nn.Module:
    import torchvision.models as tvm

    if not pretrained:
        return tvm.get_model(arch, weights=None, num_classes=num_classes)
    model = tvm.get_model(arch, weights=None)
    model.load_state_dict(imagenet_weights(arch))
    head = model.fc if hasattr(model, "fc") else model.classifier[-1]
    new_head = nn.Linear(head.in_features, num_classes)
    if hasattr(model, "fc"):
        model.fc = new_head
    else:
        model.classifier[-1] = new_head
    log.info(f"{arch}: ImageNet weights loaded; the {num_classes}-class head is new")
    return model


def _resnet(
    arch: str, in_channels: int, num_classes: int, image_size: int, pretrained: bool, stem: str
) -> nn.Module:
    model = _torchvision_model(arch, num_classes, pretrained)
    if _small_stem(stem, image_size):
        # 3x3 stride-1 first conv and no max-pool: a 32x32 image keeps 32x32 features in layer1
        # (the ImageNet stem would shrink it to 8x8 before any residual block).
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


def resnet18(
    in_channels: int,
    num_classes: int,
    image_size: int,
    pretrained: bool = False,
    stem: str = "auto",
) -> nn.Module:
    """torchvision ResNet-18; `stem: auto` uses the small-image stem up to 64 px."""
    return _resnet("resnet18", in_channels, num_classes, image_size, pretrained, stem)


def resnet34(
    in_channels: int,
    num_classes: int,
    image_size: int,
    pretrained: bool = False,
    stem: str = "auto",
) -> nn.Module:
    """torchvision ResNet-34; `stem: auto` uses the small-image stem up to 64 px."""
    return _resnet("resnet34", in_channels, num_classes, image_size, pretrained, stem)


def _small_head(width: int, hidden: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Dropout(dropout),
        nn.Linear(width, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )


def _vgg_init(model: nn.Module) -> None:
    """torchvision VGG's own initialisation (VGG.__init__), applied after allocation."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.constant_(m.bias, 0)


def _adapted(
    arch: str,
    num_classes: int,
    pretrained: bool,
    input_shape: tuple[int, int, int],
    adapt: Callable[[nn.Module], None],
    init: Callable[[nn.Module], None],
) -> nn.Module:
    """torchvision's `arch` changed in place by `adapt`. Without pretrained weights it is laid
    out on the meta device first, so the ImageNet head that `adapt` may replace (100M parameters
    for VGG) is never allocated nor initialised; then `init` initialises the final model.
    Images too small for its pooling are refused here, not at the first training step."""
    if pretrained:
        model = _torchvision_model(arch, num_classes, pretrained=True)
        adapt(model)
        flat_size(model.features, input_shape)
        return model
    with torch.device("meta"):
        model = _torchvision_model(arch, num_classes, pretrained=False)
        adapt(model)
    flat_size(model.features, input_shape, device="meta")  # shapes only: no compute
    model = model.to_empty(device="cpu")
    for m in model.modules():  # PyTorch's default init (and fresh batch-norm statistics)...
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    init(model)  # ...then the architecture's own, where it has one
    return model


def vgg11(
    in_channels: int,
    num_classes: int,
    image_size: int,
    pretrained: bool = False,
    stem: str = "auto",
    dropout: float = 0.5,
) -> nn.Module:
    """torchvision VGG-11 with batch norm. Small images: the fifth max-pool is dropped (28 px would
    pool to nothing), features are averaged to 1x1 and the head is 512 -> 512 -> classes instead
    of 25,088 -> 4,096 -> 4,096 -> classes."""
    small = _small_stem(stem, image_size)

    def adapt(model: nn.Module) -> None:
        if in_channels != 3:
            model.features[0] = nn.Conv2d(in_channels, 64, kernel_size=3, padding=1)
        if small:
            model.features = model.features[:-1]  # the last layer is the fifth MaxPool2d
            model.avgpool = nn.AdaptiveAvgPool2d(1)
            model.classifier = _small_head(512, 512, num_classes, dropout)

    shape = (in_channels, image_size, image_size)
    return _adapted("vgg11_bn", num_classes, pretrained, shape, adapt, _vgg_init)


def alexnet(
    in_channels: int,
    num_classes: int,
    image_size: int,
    pretrained: bool = False,
    stem: str = "auto",
    dropout: float = 0.5,
) -> nn.Module:
    """torchvision AlexNet. Small images: a 3x3 stride-1 first conv instead of 11x11 stride 4
    (which leaves a 32 px image 7x7 before the first pool), 2x2 average pooling and a
    1,024 -> 1,024 -> classes head instead of 9,216 -> 4,096 -> 4,096 -> classes."""
    small = _small_stem(stem, image_size)

    def adapt(model: nn.Module) -> None:
        if small:
            model.features[0] = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1)
            model.avgpool = nn.AdaptiveAvgPool2d(2)
            model.classifier = _small_head(256 * 2 * 2, 1024, num_classes, dropout)
        elif in_channels != 3:
            model.features[0] = nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2)

    shape = (in_channels, image_size, image_size)
    return _adapted("alexnet", num_classes, pretrained, shape, adapt, init=lambda model: None)
