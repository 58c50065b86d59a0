"""The resume plan: what a training job does with `resume=` and its run folder.

Decided in two moments, each in one function here: while Hydra picks the run folder,
`run_folder_for` chooses it (resume=auto searches outputs/ for the newest unfinished run of the
same config - the only search; resume=PATH takes the checkpoint's run folder); when the job
starts, `plan` reads that folder and says what to do (a ResumePlan: start afresh, continue a
checkpoint, or skip a completed sweep job). cli.py, sweep.py and run.py act on its answer.

Imported by the CLI while Hydra picks the run folder, so it must not import torch.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from omegaconf import OmegaConf

from dlrun.errors import ConfigError, DataError, DlrunError

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
# Data keys that say where the data is, not what it is: they may differ (moved data, another node;
# an image folder streamed or held in memory serves the same batches).
DATA_LOCATION_KEYS = ("root", "download", "num_workers", "memory_limit_mb")
# Optimizer keys that choose torch's implementation, not the update: they may differ too (a
# checkpoint's optimizer state keeps the implementation it was saved with).
OPTIMIZER_IMPLEMENTATION_KEYS = ("fused", "foreach")
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


@dataclass(frozen=True)
class ResumePlan:
    """What a training job does, decided once by `plan`."""

    action: Literal["fresh", "continue", "skip"]
    checkpoint: Path | None = None  # continue: the file training continues from
    # continue: False for a file outside a run folder (a downloaded checkpoint): it continues in a
    # new folder, which has no best.pt, so the best epoch is chosen among the epochs trained here
    in_run_folder: bool = True
    record: dict[str, Any] | None = None  # skip: the completed job's record (its value)
    why: str = ""  # said in the log when the folder's own state decided it (a sweep job)


FRESH = ResumePlan("fresh")


def run_folder_for(spec: str | None, config: Callable[[], dict[str, Any]]) -> Path | None:
    """hydra.run.dir for `resume=`: the folder a resumed run continues in, None for a new one.
    resume=auto: the newest unfinished run of this config under outputs/ (`config()` gives it);
    resume=PATH: the run folder of that checkpoint (a file elsewhere continues in a new one)."""
    if not spec:
        return None
    if spec == "auto":
        return find_unfinished_run(config())
    return run_folder(checkpoint_file(spec))


def plan(spec: str | None, run_dir: Path, job_record: dict[str, Any] | None = None) -> ResumePlan:
    """What the job in `run_dir` does. `job_record` is a sweep job's earlier record in its own
    folder: completed -> skip it; running or interrupted with a last.pt -> continue it. Otherwise
    `spec` (resume=) decides: auto continues the folder run_folder_for chose when it holds a
    last.pt (a new folder, or nothing unfinished, has none: a fresh start), a PATH continues that
    checkpoint, none starts afresh."""
    last = run_dir / "checkpoints" / "last.pt"
    status = (job_record or {}).get("status")
    if status == "completed":
        return ResumePlan("skip", record=job_record, why=f"already completed in {run_dir}: skipped")
    if status in ("running", "interrupted") and last.is_file():
        why = f"unfinished in {run_dir}: resuming from its last checkpoint"
        return ResumePlan("continue", last, why=why)
    if not spec:
        return FRESH
    if spec == "auto":
        return ResumePlan("continue", last) if last.is_file() else FRESH
    file = checkpoint_file(spec)
    return ResumePlan("continue", file, in_run_folder=run_folder(file) is not None)


def load_checkpoint(resume: ResumePlan) -> dict[str, Any] | None:
    """The checkpoint a plan continues from, loaded once (None for a fresh start); refuses an
    older checkpoint of a run folder whose last.pt is further on."""
    if resume.action != "continue" or resume.checkpoint is None:
        return None
    from dlrun import checkpoint  # imports torch: only once a job really continues

    _refuse_an_older_checkpoint(resume.checkpoint)
    return checkpoint.load(resume.checkpoint)


def _refuse_an_older_checkpoint(file: Path) -> None:
    """resume=<run>/checkpoints/X.pt continues in that run's folder: refuse it when the folder's
    last.pt is further on (best.pt, epoch_003.pt), or the folder would mix two histories."""
    last = file.parent / "last.pt"
    if file.parent.name != "checkpoints" or not last.is_file() or last.samefile(file):
        return
    from dlrun import checkpoint

    here, there = (checkpoint.load(f, mmap=True)["loop"] for f in (file, last))
    if there["batches_done"] > here["batches_done"]:
        raise DlrunError(
            f"resume={file}: its run folder has a newer checkpoints/last.pt "
            f"(epoch {there['epoch']}); resuming from an older checkpoint would mix two histories "
            "in one folder - resume from the run folder, or copy the folder, delete the copy's "
            "checkpoints/last.pt and resume the copy"
        )


def check_epochs_left(resume: ResumePlan, trained: int, epochs: int) -> None:
    """Refuse a checkpoint that has trained past trainer.epochs, or (outside a run folder, so
    continued in a new one) one with no epoch left to train."""
    file = resume.checkpoint
    if trained > epochs:
        raise ConfigError(
            f"resume={file} has already trained {trained} epochs: set "
            f"trainer.epochs to {trained} or more (it is {epochs})"
        )
    if not resume.in_run_folder and trained >= epochs:
        raise ConfigError(
            f"resume={file} has trained {trained} epochs: raise trainer.epochs above "
            f"{trained} to continue it "
            "(its run folder is not here, so it continues in a new one)"
        )


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
        recorded = _saved_config(metrics, saved)
        if recorded is not None and _comparable(recorded) == _comparable(config):
            candidates.append(run)
    return max(
        candidates, key=lambda r: (r / "checkpoints" / "last.pt").stat().st_mtime, default=None
    )


# A run folder's files are data: its .hydra/config.yaml may use interpolations of its own keys
# and ${oc.env:...} (as dlrun's conf does), never another resolver (dlrun's own resolve folders).
_OTHER_RESOLVER = re.compile(r"\$\{(?!oc\.env:)[\w.]+:")


def _saved_config(metrics: Path, saved: Path) -> dict[str, Any] | None:
    """An unfinished run's config as plain data, or None (completed, unreadable, or using a
    resolver other than oc.env: not a candidate)."""
    if not (metrics.is_file() and saved.is_file()):  # a FIFO would hang the read
        return None
    try:
        if json.loads(metrics.read_text()).get("status") == "completed":
            return None
        node = OmegaConf.load(saved)
        raw = json.dumps(OmegaConf.to_container(node, resolve=False))
        if _OTHER_RESOLVER.search(raw):
            return None
        plain = OmegaConf.to_container(node, resolve=True)
    except Exception:  # noqa: BLE001 (a malformed file of someone else's: not a candidate)
        return None
    return plain if isinstance(plain, dict) else None


def _select(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _may_differ(key: str) -> bool:
    """Where the data is (DATA_LOCATION_KEYS), or which implementation of torch's runs the
    optimizer (OPTIMIZER_IMPLEMENTATION_KEYS): not a change of set-up."""
    section, last = key.split(".", 1)[0], key.rsplit(".", 1)[-1]
    if section == "data":
        return key in {f"data.{k}" for k in DATA_LOCATION_KEYS}
    return section.startswith("optimizer") and last in OPTIMIZER_IMPLEMENTATION_KEYS


def _flat_differences(saved: Any, now: Any, prefix: str) -> list[str]:
    if saved in (None, {}) and now in (None, {}):  # an absent section equals an empty one
        return []
    if isinstance(saved, dict) and isinstance(now, dict):
        keys = sorted(set(saved) | set(now))
        return [
            d for k in keys for d in _flat_differences(saved.get(k), now.get(k), f"{prefix}.{k}")
        ]
    if saved == now or _may_differ(prefix):
        return []
    return [f"{prefix} (checkpoint {saved!r}, now {now!r})"]


def check_same_setup(saved: dict[str, Any], current: dict[str, Any], checkpoint: Path) -> None:
    """Refuse to continue when the model, data or optimisation set-up changed."""
    differences = [
        d
        for key in LOCKED_KEYS
        for d in _flat_differences(_select(saved, key), _select(current, key), key)
    ]
    _refuse_stretched_schedule(saved, current, differences, checkpoint)
    if differences:
        raise ConfigError(
            f"cannot resume from {checkpoint}: the config differs in {'; '.join(differences)} - "
            "resume with the original settings "
            "(only trainer.epochs and other loop keys may change) or start a new run"
        )


# Schedulers whose length dlrun fills in from trainer.epochs at run time (build.py's
# total_steps, and cosine's T_max unless the config sets it).
_SIZED_BY_EPOCHS = ("OneCycleLR", "CosineAnnealingLR")


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


# Modes that read a run (ckpt=) and write only a folder of their own: they never continue one.
READ_ONLY_MODES = ("eval", "predict", "export")


def check_before_writing(config: Any, run_dir: Path) -> None:
    """Refuse a resume of `run_dir` before Hydra writes its .hydra/ files into it: a refused
    resume must leave the folder as it was (a rewritten .hydra/config.yaml would make the next
    resume=auto miss it). Checks the values, the checkpoint's place and epochs, and the set-up;
    what cannot be checked yet (a config that needs Hydra's runtime) is checked when the job
    starts, as before."""
    from omegaconf import DictConfig

    if not isinstance(config, DictConfig) or config.get("mode", "train") != "train":
        return
    spec = config.get("resume")
    chosen = plan(spec, run_dir) if spec else FRESH
    if chosen.action != "continue" or run_folder(chosen.checkpoint) is None:
        return  # nothing continued in place: the folder written is a new one
    from dlrun import config_record
    from dlrun.validate import validate_config

    job = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
    try:
        current = config_record.recorded(job)
    except Exception:  # noqa: BLE001 (an interpolation of Hydra's runtime: checked at job start)
        return
    validate_config(job)
    saved = load_checkpoint(chosen)
    assert saved is not None
    from dlrun.checkpoint import fitting

    with fitting(chosen.checkpoint, "run"):  # a tampered checkpoint: one line, not a warning
        check_same_setup(saved["config"], current, chosen.checkpoint)
        check_epochs_left(chosen, int(saved["loop"]["epoch"]), int(current["trainer"]["epochs"]))


# A continued run folder as it was before this command: Hydra rewrites its .hydra/ files and
# appends to its log before the job can find that the checkpoint's weights do not fit the model.
# A resume refused then puts them back, so a refused command changes nothing (the next
# resume=auto still finds the run). Keyed by folder; one entry per command at most.
_as_it_was: dict[Path, tuple[dict[Path, bytes], dict[Path, int], tuple[int, int] | None]] = {}


def _signature(file: Path) -> tuple[int, int] | None:
    try:
        st = file.lstat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def keep_folder_as_it_was(run_dir: Path) -> None:
    """Before Hydra writes into a run folder this command continues: its .hydra/ files, the
    length of its logs and the state of its last.pt."""
    hydra_files = {p: p.read_bytes() for p in (run_dir / ".hydra").glob("*") if p.is_file()}
    logs = {p: p.stat().st_size for p in run_dir.glob("*.log") if p.is_file()}
    last = _signature(run_dir / "checkpoints" / "last.pt")
    _as_it_was[run_dir.resolve()] = (hydra_files, logs, last)


def put_folder_back(run_dir: Path, refused: bool) -> None:
    """A continued run refused before it wrote a checkpoint: the .hydra/ files and logs as
    they were. Anything else (a run that went on, or stopped after saving) keeps what it wrote."""
    kept = _as_it_was.pop(run_dir.resolve(), None)
    if kept is None or not refused:
        return
    hydra_files, logs, last = kept
    if _signature(run_dir / "checkpoints" / "last.pt") != last:
        return  # this command trained and saved: its .hydra/ files describe the run now
    from dlrun import safe_files

    for path, content in hydra_files.items():
        safe_files.write_atomic(path, content)
    for path, size in logs.items():
        fd = safe_files.open_nofollow(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)
