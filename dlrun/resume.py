"""Finding what to resume: `resume=PATH` (a run folder or a checkpoint) or `resume=auto`.

Imported by the CLI while Hydra picks the run folder, so it must not import torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from dlrun.errors import ConfigError, DataError

# Keys that must match the checkpoint's for training to continue from it (epochs may change).
LOCKED_KEYS = (
    "model",
    "data",
    "loss",
    "optimizer",
    "optimizers",
    "scheduler",
    "seed",
    "trainer.batch_size",
    "trainer.grad_accum",
)
# Data keys that say where the data is, not what it is: they may differ (moved data, another node).
DATA_LOCATION_KEYS = ("root", "download", "num_workers")
# Where `resume=auto` looks for unfinished single runs.
OUTPUTS = Path("outputs")


def checkpoint_file(spec: str | Path, name: str = "last") -> Path:
    """A run folder means its checkpoints/<name>.pt; a file is taken as it is."""
    path = Path(spec)
    file = path / "checkpoints" / f"{name}.pt" if path.is_dir() else path
    if not file.is_file():
        raise DataError(
            f"no checkpoint at {file}: "
            f"give a run folder holding checkpoints/{name}.pt, or a .pt file"
        )
    return file


def run_folder(checkpoint: Path) -> Path | None:
    """The dlrun run folder a checkpoint belongs to (<run>/checkpoints/x.pt), or None for a file
    elsewhere (a downloaded checkpoint): resuming that starts a new run folder, never takes over
    the folder the file happens to lie in."""
    run = checkpoint.parent.parent
    if checkpoint.parent.name != "checkpoints":
        return None
    return run if (run / "metrics.json").is_file() or (run / ".hydra").is_dir() else None


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in ("resume", "hydra")}


def find_unfinished_run(config: dict[str, Any], outputs: Path = OUTPUTS) -> Path | None:
    """The newest single run under `outputs` that did not complete and has the same config."""
    candidates = []
    for metrics in outputs.glob("*/*/metrics.json"):
        run = metrics.parent
        saved = run / ".hydra" / "config.yaml"
        if not (run / "checkpoints" / "last.pt").is_file() or not saved.is_file():
            continue
        if json.loads(metrics.read_text()).get("status") == "completed":
            continue
        if _comparable(OmegaConf.to_container(OmegaConf.load(saved), resolve=True)) == _comparable(
            config
        ):
            candidates.append(run)
    return max(
        candidates, key=lambda r: (r / "checkpoints" / "last.pt").stat().st_mtime, default=None
    )


def _select(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _flat_differences(saved: Any, now: Any, prefix: str) -> list[str]:
    if saved in (None, {}) and now in (None, {}):  # an absent section equals an empty one
        return []
    if isinstance(saved, dict) and isinstance(now, dict):
        keys = sorted(set(saved) | set(now))
        return [
            d for k in keys for d in _flat_differences(saved.get(k), now.get(k), f"{prefix}.{k}")
        ]
    return [] if saved == now else [f"{prefix} (checkpoint {saved!r}, now {now!r})"]


def check_same_setup(saved: dict[str, Any], current: dict[str, Any], checkpoint: Path) -> None:
    """Refuse to continue when the model, data or optimisation set-up changed."""
    located = tuple(f"data.{k} " for k in DATA_LOCATION_KEYS)
    differences = [
        d
        for key in LOCKED_KEYS
        for d in _flat_differences(_select(saved, key), _select(current, key), key)
        if not d.startswith(located)
    ]
    _refuse_stretched_schedule(saved, current, differences, checkpoint)
    if differences:
        raise ConfigError(
            f"cannot resume from {checkpoint}: the config differs in {'; '.join(differences)} - "
            "resume with the original settings "
            "(only trainer.epochs and other loop keys may change) or start a new run"
        )


# Schedulers whose length dlrun fills in from trainer.epochs at run time (build.py's total_steps).
_SIZED_BY_EPOCHS = ("OneCycleLR",)


def _refuse_stretched_schedule(
    saved: dict[str, Any], current: dict[str, Any], differences: list[str], checkpoint: Path
) -> None:
    """More epochs cannot continue a schedule laid out over the old number (one-cycle, or cosine
    whose T_max follows trainer.epochs): say that, rather than a scheduler key that differs."""
    before, now = _select(saved, "trainer.epochs"), _select(current, "trainer.epochs")
    target = str(_select(saved, "scheduler._target_") or "")
    sized = target.endswith(_SIZED_BY_EPOCHS) or any(
        d.startswith("scheduler.") for d in differences
    )
    if before != now and target and sized:
        name = target.rsplit(".", 1)[-1]
        raise ConfigError(
            f"cannot resume from {checkpoint} with trainer.epochs={now}: "
            f"its {name} schedule is laid "
            f"out over trainer.epochs={before} and cannot be stretched - resume with "
            f"trainer.epochs={before}, or start a new run"
        )
