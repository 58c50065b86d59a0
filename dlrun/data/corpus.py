"""Tokenised text corpora and their on-disk cache.

A corpus holds each split's documents as one flat int32 tensor of type ids (1-based indices into
`types`, the distinct tokens in order of first appearance) plus offsets, and class indices. It is
cached in the data folder under a name hashed from the tokeniser settings and the identity (path,
size, modification time) of the source files, so a second run skips reading and tokenising.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from dlrun.atomic import NEW_FILE_MODE, temp_beside
from dlrun.data.tokenize import Tokenizer

log = logging.getLogger("dlrun")

CACHE_FORMAT = 1  # bump when the cached layout or tokenisation code changes meaning


@dataclass
class Docs:
    """One split's documents: doc i is ids[offsets[i]:offsets[i+1]], its class y[i]."""

    ids: Tensor  # int32 (total tokens,)
    offsets: Tensor  # int64 (N + 1,)
    y: Tensor  # int64 (N,)

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Corpus:
    types: list[str]
    class_names: list[str]
    splits: dict[str, Docs]  # "train", and "test" where the source has one


def tokenize_splits(
    rows: dict[str, list[tuple[str, int]]], tokenizer: Tokenizer, class_names: list[str]
) -> Corpus:
    """Tokenise (text, class index) rows of every split with one shared type table."""
    index: dict[str, int] = {}
    splits = {}
    for name, split_rows in rows.items():
        ids, offsets = array("i"), array("q", [0])
        for text, _ in split_rows:
            # setdefault gives a new token the next id: ids are 1-based, 0 stays padding
            ids.extend(index.setdefault(t, len(index) + 1) for t in tokenizer(text))
            offsets.append(len(ids))
        splits[name] = Docs(
            ids=torch.tensor(ids, dtype=torch.int32),
            offsets=torch.tensor(offsets, dtype=torch.int64),
            y=torch.tensor([label for _, label in split_rows], dtype=torch.int64),
        )
    return Corpus(list(index), class_names, splits)


def file_identity(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def cache_file(folder: Path, name: str, settings: dict[str, Any]) -> Path:
    """Where the corpus for these settings (tokeniser, sources, columns...) is cached."""
    text = json.dumps({"format": CACHE_FORMAT, **settings}, sort_keys=True, default=str)
    return folder / f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}.safetensors"


def save(corpus: Corpus, path: Path) -> None:
    """Write atomically (temporary file, then rename): concurrent runs never see a torn cache."""
    from safetensors.torch import save_file

    tensors = {
        f"{split}.{part}": getattr(docs, part).contiguous()
        for split, docs in corpus.splits.items()
        for part in ("ids", "offsets", "y")
    }
    meta = {"types": json.dumps(corpus.types), "class_names": json.dumps(corpus.class_names)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_beside(path)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        os.chmod(tmp, NEW_FILE_MODE)  # safetensors creates its files 0600: a shared cache
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> Corpus | None:
    """The cached corpus, or None when there is none or it cannot be read (it is rebuilt)."""
    if not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
        splits = {
            name: Docs(tensors[f"{name}.ids"], tensors[f"{name}.offsets"], tensors[f"{name}.y"])
            for name in sorted({k.split(".")[0] for k in tensors})
        }
        return Corpus(json.loads(meta["types"]), json.loads(meta["class_names"]), splits)
    except Exception as err:  # a torn or foreign file: say so and rebuild
        log.warning(f"text cache {path} is unreadable ({type(err).__name__}): rebuilding it")
        return None


def cached(
    folder: Path, name: str, settings: dict[str, Any], build: Callable[[], Corpus]
) -> Corpus:
    """Load the corpus for `settings` from the cache, or `build` it and cache it.

    A data folder that cannot be written (read-only, full) caches in the user's cache folder
    instead (user_cache()); a run never fails for want of a cache."""
    path, fallback = cache_file(folder, name, settings), cache_file(user_cache(), name, settings)
    for candidate in (path, fallback):
        corpus = load(candidate)
        if corpus is not None:
            log.info(f"text: loaded tokenised {name} from cache {candidate}")
            return corpus
    corpus = build()
    for candidate in (path, fallback):
        try:
            save(corpus, candidate)
        except OSError as err:
            log.info(f"text: cannot cache in {candidate.parent} ({err.strerror or err})")
            continue
        log.info(
            f"text: tokenised {name} ({len(corpus.types):,} distinct tokens); cached in {candidate}"
        )
        return corpus
    log.warning(f"text: tokenised {name} is not cached (no writable cache folder)")
    return corpus


def user_cache() -> Path:
    """The per-user cache folder for a read-only data.root: $XDG_CACHE_HOME/dlrun/text_cache
    (~/.cache/dlrun/text_cache by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dlrun" / "text_cache"
