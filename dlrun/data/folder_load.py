"""How an image folder is read: its channels (data.channels=auto keeps greyscale pictures one
channel), how many worker processes decode it (data.num_workers=auto), and, when its decoded
images fit under data.memory_limit_mb, one decoding pass into uint8 tensors that are then served
from memory like MNIST's (no worker, no PIL, no copy per epoch).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import torch
from torch import Tensor

from dlrun.errors import DataError
from dlrun.threads import usable_cpus

# Files whose header is read to decide data.channels=auto (spread over the folder).
CHANNEL_SAMPLES = 1000
# PIL modes read as one channel: greyscale of any depth, and two-level (black and white).
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
MAX_AUTO_WORKERS = 8  # beyond ~8 decoding processes, the main process's collation limits


def open_as(path: str, mode: str) -> Any:
    """ImageFolder's loader, converting to `mode` ("L" or "RGB") instead of always RGB.
    A module-level function (bound with functools.partial) so worker processes can pickle it.
    An image whose header claims more pixels than PIL's limit (a few KB of PNG can claim
    gigapixels) is refused as a ValueError - an unreadable image - instead of being decoded after
    PIL's warning (memory) or ending in PIL's own exception (a traceback)."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with open(path, "rb") as f:
                return Image.open(f).convert(mode)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise ValueError(f"too many pixels, refused as a decompression bomb ({err})") from None


def loader_for(channels: int) -> Any:
    return functools.partial(open_as, mode="L" if channels == 1 else "RGB")


def folder_channels(files: list[str], setting: int | str) -> int:
    """1 or 3: `setting`, or for auto 1 when every sampled file is greyscale (PIL header only)."""
    if setting != "auto":
        return int(setting)
    from PIL import Image

    step = max(1, len(files) // CHANNEL_SAMPLES)
    for file in files[::step]:
        try:
            with Image.open(file) as img:
                if img.mode not in GREY_MODES:
                    return 3
        except (OSError, ValueError, SyntaxError):  # unreadable: refused later, when decoded
            continue
    return 1


def auto_workers(setting: int | str, in_memory: bool, device_type: str = "cpu") -> int:
    """Decoding processes. Decoded once into memory: every usable CPU decodes (nothing else runs
    then). Streamed to a CPU run: the workers take CPUs from torch's threads, so a quarter of the
    CPUs (none on 2 cores, where one more torch thread trains faster than a decoding process;
    docs/performance.md has the measurements). Streamed to a GPU: the CPUs are the workers' but
    one (the main process feeds the GPU). At most MAX_AUTO_WORKERS."""
    if setting != "auto":
        return int(setting)
    cpus = usable_cpus()
    if in_memory:
        return min(cpus, MAX_AUTO_WORKERS) if cpus > 1 else 0
    if device_type != "cpu":
        return min(cpus - 1, MAX_AUTO_WORKERS)
    return min(cpus // 4, MAX_AUTO_WORKERS)


def decoded_mb(count: int, channels: int, image_size: int) -> float:
    """Memory the folder's images take decoded (uint8)."""
    return count * channels * image_size * image_size / 2**20


def decode(split: Any, batch_size: int = 256) -> tuple[Tensor, Tensor, list[int]]:
    """Every image of a FolderSplit (in storage order) as uint8 (N, C, H, W), long labels (N,),
    and the positions kept (an unreadable file skipped with data.skip_bad is left out)."""
    parts, labels = [], []
    for batch in split.batches(batch_size):
        parts.append(batch["x"])
        labels.append(batch["y"])
    if not parts:
        raise DataError(f"no image of {split.source.dataset.root} could be read")
    skipped = set(split.source.skipped)
    samples = split.source.dataset.samples
    kept = [p for p, i in enumerate(split.indices) if samples[i][0] not in skipped]
    return torch.cat(parts), torch.cat(labels).long(), kept
