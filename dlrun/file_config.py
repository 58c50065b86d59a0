"""A config read from a file (a checkpoint's), made fit to rebuild from: plain data that never
chooses where data goes or what is fetched.

A checkpoint's config says what was trained (the model, the dataset, the loss); it may not say
where this machine keeps data (`data.root`), whether to download (`data.download`) or which
pretrained weights to fetch (`model.pretrained`, torchvision's `weights`). Those come from this
command line, else dlrun's own defaults for that dataset (conf/data/*.yaml, whose root follows
DLRUN_DATA_DIR), never from the file. (Pretrained weights: config_record.without_weight_sources.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

# Data keys that say where the data is kept and whether it is fetched.
DATA_PLACE_KEYS = ("root", "download")


def data_for_reading(
    saved: Mapping[str, Any], local: Mapping[str, Any], typed: Iterable[str]
) -> dict[str, Any]:
    """The file's data section with root/download from the command line (`typed` keys, values
    in `local`), else from dlrun's default for the same dataset, else left out."""
    data = dict(saved)
    typed = set(typed)
    defaults = _dataset_defaults().get(str(saved.get("_target_")), {})
    for key in DATA_PLACE_KEYS:
        if key not in data:
            continue
        if f"data.{key}" in typed and key in local:
            data[key] = local[key]
        elif key in defaults:
            data[key] = defaults[key]
        else:
            del data[key]
    return data


def conf_dir() -> Path:
    """dlrun's own conf/ (inside the wheel as dlrun/conf; at the top of a source checkout)."""
    packaged = Path(__file__).resolve().parent / "conf"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "conf"


def _dataset_defaults() -> dict[str, dict[str, Any]]:
    """data `_target_` -> dlrun's own root/download for it (conf/data/*.yaml, resolved here:
    dlrun's files are trusted; `${oc.env:DLRUN_DATA_DIR,./data}` follows this environment, read
    at each call)."""
    found: dict[str, dict[str, Any]] = {}
    for file in sorted((conf_dir() / "data").glob("*.yaml")):
        node = OmegaConf.load(file)
        target = node.get("_target_")
        if target is None:
            continue
        place = {k: node[k] for k in DATA_PLACE_KEYS if k in node}
        found.setdefault(str(target), place)
    return found
