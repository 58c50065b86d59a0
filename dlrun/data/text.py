"""Text classification data: AG_NEWS and the user's own CSV, as padded token-id tensors.

Each split is an InMemorySplit of x (N, width) int32 token ids padded with 0, lengths (N,) and
y (N,); a whole-batch transform trims x to the longest document in the batch and makes it long.
The vocabulary is chosen from the training rows only (after the validation split is carved), and
travels in every checkpoint (DataBundle.text.state, saved under checkpoint_state()["text"]).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from dlrun.data import ag_news as agn
from dlrun.data import corpus as cache
from dlrun.data import labelled_csv
from dlrun.data.bundle import Batch, DataBundle, InMemorySplit, TextFacts, carve_validation
from dlrun.data.split import holdout
from dlrun.data.tabular import csv_file
from dlrun.data.tokenize import Tokenizer, get_tokenizer
from dlrun.data.vocab import PAD_ID, Vocab, choose
from dlrun.errors import DataError

log = logging.getLogger("dlrun")

_CHUNK = 16_384  # documents padded at a time (bounds the temporary index tensor)


def trim_batch(batch: Batch) -> Batch:
    """Cut a batch's padding to its longest document; ids become long for nn.Embedding."""
    width = max(int(batch["lengths"].max()), 1)  # one host read per batch
    return {**batch, "x": batch["x"][:, :width].long()}


def pad(docs: cache.Docs, max_length: int | None) -> InMemorySplit:
    """Documents as a zero-padded (N, width) int32 tensor, truncated to `max_length` tokens."""
    lengths = docs.offsets.diff()
    if max_length is not None:
        lengths = lengths.clamp(max=max_length)
    width = max(int(lengths.max()) if len(lengths) else 1, 1)
    x = torch.zeros(len(docs), width, dtype=torch.int32)
    pos, starts = torch.arange(width), docs.offsets[:-1]
    for start in range(0, len(docs), _CHUNK):
        rows = slice(start, start + _CHUNK)
        mask = pos < lengths[rows, None]
        x[rows][mask] = docs.ids[(starts[rows, None] + pos)[mask]]
    return InMemorySplit({"x": x, "lengths": lengths, "y": docs.y}, trim_batch)


def _check_settings(min_freq: int, max_vocab: int | None, max_length: int | None) -> None:
    if not isinstance(min_freq, int) or min_freq < 1:
        raise ValueError(f"min_freq={min_freq!r} is invalid: it must be an integer >= 1")
    if max_vocab is not None and (not isinstance(max_vocab, int) or max_vocab < 3):
        raise ValueError(f"max_vocab={max_vocab!r} is invalid: use an integer >= 3 or null")
    if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
        raise ValueError(f"max_length={max_length!r} is invalid: use a positive integer or null")


def assemble(
    corpus: cache.Corpus,
    train_all: InMemorySplit,
    test: InMemorySplit,
    *,
    min_freq: int,
    max_vocab: int | None,
    val_fraction: float,
    seed: int,
    state: dict[str, Any],
    label_column: str,
    saved: dict[str, Any] | None = None,
) -> DataBundle:
    """Carve validation, choose the vocabulary from the training rows (or reuse the one a
    checkpoint saved, so an eval run encodes text exactly as training did), map every split
    to it."""
    train, val = carve_validation(train_all, val_fraction, seed)
    vocab, names = _encode(corpus, (train, val, test), min_freq, max_vocab, saved)
    log.info(
        f"text: {len(vocab):,} tokens in the vocabulary (from {len(train):,} training documents), "
        f"{len(names)} classes, padded width {train.tensors['x'].shape[1]}"
    )
    return DataBundle(
        train=train,
        val=val,
        test=test,
        task="classification",
        input_shape=(train.tensors["x"].shape[1],),
        num_classes=len(names),
        class_names=names,
        text=TextFacts(
            vocab_size=len(vocab),
            padding_idx=PAD_ID,
            state={**state, "vocab": vocab.state(), "class_names": names},
        ),
        batch_inputs=("x", "lengths"),
        run_files={
            "labels.json": {
                "label_column": label_column,
                "classes": {n: i for i, n in enumerate(names)},
            }
        },
    )


def _encode(
    corpus: cache.Corpus,
    splits: tuple[InMemorySplit, InMemorySplit, InMemorySplit],
    min_freq: int,
    max_vocab: int | None,
    saved: dict[str, Any] | None,
) -> tuple[Vocab, list[str]]:
    """Map the (train, val, test) splits' tokens to the vocabulary chosen from the training rows,
    or to the one a checkpoint saved, with its class order; returns the vocabulary and classes."""
    train = splits[0]
    if saved and "text" in saved:
        vocab = Vocab.from_state(saved["text"]["vocab"])
        table = vocab.table_for(corpus.types, train.tensors["x"].dtype)
    else:
        vocab, table = choose(corpus.types, train.tensors["x"], min_freq, max_vocab)
    for split in splits:
        split.tensors["x"] = table[split.tensors["x"]]
    names = corpus.class_names
    if saved and "text" in saved and saved["text"].get("class_names") not in (None, names):
        names = _relabel(names, saved["text"]["class_names"], splits)
    return vocab, names


def _relabel(names: list[str], trained: list[str], splits: tuple[InMemorySplit, ...]) -> list[str]:
    """Give the labels the class numbers the checkpoint's model was trained with (the CSV's own
    sorted labels may differ: a label renamed or missing since), by name; returns those names."""
    unknown = [n for n in names if n not in trained]
    if unknown:
        raise DataError(
            f"the data has label(s) {unknown} that the checkpoint's model was not trained on "
            f"(it knows {trained}): evaluate on data with those labels only"
        )
    to_trained = torch.tensor([trained.index(n) for n in names])
    for split in splits:
        split.tensors["y"] = to_trained[split.tensors["y"]]
    return list(trained)


def ag_news(
    root: str,
    download: bool,
    tokenizer: str,
    lowercase: bool,
    min_freq: int,
    max_vocab: int | None,
    max_length: int | None,
    val_fraction: float,
    seed: int,
    checkpoint_state: dict | None = None,
) -> DataBundle:
    """AG_NEWS news topics: 120,000 train / 7,600 test articles, 4 classes."""
    tokenize = get_tokenizer(tokenizer, lowercase)
    _check_settings(min_freq, max_vocab, max_length)
    paths = agn.ensure_files(Path(root) / "ag_news", download)

    def build() -> cache.Corpus:
        for split, path in paths.items():
            agn.verify(path, split)
        rows = {split: agn.read_rows(path) for split, path in paths.items()}
        return cache.tokenize_splits(rows, tokenize, agn.CLASS_NAMES)

    settings = {"tokenizer": tokenizer, "lowercase": lowercase}
    key = {**settings, "files": [cache.file_identity(p) for p in paths.values()]}
    corpus = cache.cached(Path(root) / "text_cache", "ag_news", key, build)
    return assemble(
        corpus,
        pad(corpus.splits["train"], max_length),
        pad(corpus.splits["test"], max_length),
        min_freq=min_freq,
        max_vocab=max_vocab,
        val_fraction=val_fraction,
        seed=seed,
        state={**settings, "max_length": max_length},
        label_column="class index",
        saved=checkpoint_state,
    )


def _holdout(
    split: InMemorySplit, fraction: float, split_seed: int
) -> tuple[InMemorySplit, InMemorySplit]:
    """(train, test) by `fraction` of the rows, stratified by class (dlrun.data.split)."""
    labels = split.tensors["y"]
    train_idx, test_idx = holdout(len(labels), fraction, split_seed, labels.cpu())
    return split.subset(train_idx), split.subset(test_idx)


def _csv_corpus(
    path: str,
    test_path: str | None,
    columns: list[str],
    label_column: str,
    root: str,
    settings: dict[str, Any],
    tokenize: Tokenizer,
) -> cache.Corpus:
    """The CSV files' tokenized documents, from the text cache under `root` when these files
    (by identity) were read with these settings before."""
    paths = {"train": Path(path)} | ({"test": Path(test_path)} if test_path else {})
    for split, p in paths.items():
        csv_file(p, "data.path" if split == "train" else "data.test_path")
    key = {
        **settings,
        "text_columns": columns,
        "label_column": label_column,
        "files": {s: cache.file_identity(p) for s, p in paths.items()},
    }
    return cache.cached(
        Path(root) / "text_cache",
        Path(path).stem,
        key,
        lambda: labelled_csv.corpus(paths, columns, label_column, tokenize),
    )


def text_csv(
    path: str,
    text_columns: list[str] | str,
    label_column: str,
    root: str,
    tokenizer: str,
    lowercase: bool,
    min_freq: int,
    max_vocab: int | None,
    max_length: int | None,
    test_fraction: float,
    split_seed: int,
    val_fraction: float,
    seed: int,
    test_path: str | None = None,
    checkpoint_state: dict | None = None,
) -> DataBundle:
    """The user's labelled text: a CSV with a header row; labels may be strings."""
    tokenize = get_tokenizer(tokenizer, lowercase)
    _check_settings(min_freq, max_vocab, max_length)
    columns = [text_columns] if isinstance(text_columns, str) else list(text_columns)
    settings = {"tokenizer": tokenizer, "lowercase": lowercase}
    corpus = _csv_corpus(path, test_path, columns, label_column, root, settings, tokenize)
    train_all = pad(corpus.splits["train"], max_length)
    if "test" in corpus.splits:
        test = pad(corpus.splits["test"], max_length)
    else:
        train_all, test = _holdout(train_all, test_fraction, split_seed)
    return assemble(
        corpus,
        train_all,
        test,
        min_freq=min_freq,
        max_vocab=max_vocab,
        val_fraction=val_fraction,
        seed=seed,
        state={**settings, "max_length": max_length},
        label_column=label_column,
        saved=checkpoint_state,
    )
