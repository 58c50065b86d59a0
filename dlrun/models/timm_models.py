"""Any model of timm (PyTorch Image Models) by name, sized from the data like the built-ins.

`model=timm model.name=convnext_tiny`: the data decides num_classes and in_chans (and img_size
for models that take one, such as ViTs). Weights come from a local file (`model.weights=PATH`,
read as plain tensors, never unpickled code) or, only when `model.pretrained=true` is set, from
timm's own cache (downloaded there on first use). timm is an optional extra: it is imported here
only, when such a model is built, so `dlrun --help` never pays for it.
"""

from __future__ import annotations

import difflib
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlrun.errors import ConfigError, ImagesTooSmall

log = logging.getLogger("dlrun")

MISSING = "model=timm needs the timm extra: pip install 'dlrun[timm]' (or pip install timm)"


def _timm() -> Any:
    try:
        import timm
    except ImportError:
        raise ConfigError(MISSING) from None
    return timm


def _check_name(timm: Any, name: str) -> None:
    if isinstance(name, str) and timm.is_model(name):
        return
    if str(name).startswith(("hf-hub:", "hf_hub:", "local-dir:")):
        raise ValueError(
            f"name={name!r}: dlrun builds timm's own architectures by name (resnet50.a1_in1k), "
            "not one a hub repository or folder describes: give the architecture's name and "
            "its weights file as weights=PATH"
        )
    close = difflib.get_close_matches(str(name), timm.list_models(), n=3, cutoff=0.7)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ValueError(
        f"name={name!r} is not a timm model{hint}: timm.list_models('*convnext*') lists them"
    )


def _create(timm: Any, name: str, kwargs: dict[str, Any]) -> nn.Module:
    """timm.create_model, telling models that take an input size (ViTs) the data's."""
    try:
        return timm.create_model(name, **kwargs)
    except TypeError as err:  # a convnet's __init__ has no img_size: it takes any size
        if "img_size" not in kwargs or "img_size" not in str(err):
            raise
    return timm.create_model(name, **{k: v for k, v in kwargs.items() if k != "img_size"})


def _pretrained(timm: Any, name: str, kwargs: dict[str, Any]) -> nn.Module:
    """timm's pretrained weights (its cache, or downloaded into it), with a new head for the
    data's classes and the first convolution adapted to its channels (timm does both)."""
    from dlrun.download import last_line, socket_timeout

    try:
        with socket_timeout():
            return _create(timm, name, {**kwargs, "pretrained": True})
    except Exception as err:  # huggingface_hub / urllib: offline, not cached, no such weights
        raise ValueError(
            f"pretrained=true needs {name}'s weights, which are not in timm's cache and could not "
            f"be downloaded ({last_line(err)}): set HF_HOME to a cache holding them, give a file "
            "with weights=PATH, or use pretrained=false"
        ) from None


def load_weights(model: nn.Module, path: str) -> None:
    """A state dict from a file (.pt/.pth/.bin read with weights_only, or .safetensors). Tensors
    whose shape differs (another dataset's classifier head) keep their fresh initialisation;
    a file of another architecture is refused."""
    from dlrun.checkpoint import load_state_dict

    state = load_state_dict(Path(path).expanduser(), key="model.weights")
    own = model.state_dict()
    fits = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in state]
    if missing or len(fits) < len(own) // 2:
        raise ValueError(
            f"weights={path} does not hold this model's weights ({len(missing)} of its "
            f"{len(own)} tensors missing, e.g. {missing[:1] or list(state)[:1]}): give a file "
            "saved from the same timm model"
        )
    reset = sorted(set(own) - set(fits))
    model.load_state_dict(fits, strict=False)
    note = f"; new (other shape in the file): {', '.join(reset)}" if reset else ""
    log.info(f"model.weights: {len(fits)} tensors loaded from {path}{note}")


def _check_input(model: nn.Module, in_channels: int, image_size: int) -> None:
    """One image through the model, so an input it cannot take (too small for a convnet's
    pooling, not a multiple of a ViT's patch) is refused before training."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, in_channels, image_size, image_size))
    except (RuntimeError, AssertionError, ValueError):
        raise ImagesTooSmall((in_channels, image_size, image_size)) from None
    finally:
        model.train(was_training)


def timm_model(
    in_channels: int,
    num_classes: int,
    image_size: int,
    name: str = "resnet18",
    pretrained: bool = False,
    weights: str | None = None,
    drop_rate: float = 0.0,
    drop_path_rate: float | None = None,
) -> nn.Module:
    """timm's `name` with num_classes and in_chans from the data; random init unless
    `pretrained` (timm's cache) or `weights` (a local state-dict file) says otherwise."""
    timm = _timm()
    _check_name(timm, name)
    if pretrained and weights:
        raise ValueError("pretrained=true and weights=PATH both give weights: choose one")
    kwargs: dict[str, Any] = {
        "num_classes": num_classes,
        "in_chans": in_channels,
        "img_size": image_size,
        "drop_rate": drop_rate,
    }
    if drop_path_rate is not None:
        kwargs["drop_path_rate"] = drop_path_rate
    model = _pretrained(timm, name, kwargs) if pretrained else _create(timm, name, kwargs)
    if weights:
        load_weights(model, weights)
    _check_input(model, in_channels, image_size)
    return model
