"""Text data: tokeniser, vocabulary, padding, AG_NEWS files and checksums, the corpus cache,
text_csv."""

from __future__ import annotations

import functools
import hashlib
import http.server
import logging
import socket
import threading
import urllib.request
from pathlib import Path

import pytest
import torch

from dlrun.data import ag_news as agn
from dlrun.data import corpus as cache
from dlrun.data.text import ag_news, pad, text_csv, trim_batch
from dlrun.data.tokenize import get_tokenizer
from dlrun.data.vocab import Vocab, choose
from dlrun.errors import ConfigError, DataError
from tests.textdata import write_ag_news, write_labelled_csv

TEXT = dict(tokenizer="basic_english", lowercase=True, min_freq=1, max_vocab=None, max_length=64)


def build_ag_news(root: Path, **overrides) -> object:
    kwargs = {**TEXT, "download": False, "val_fraction": 0.1, "seed": 0, **overrides}
    return ag_news(str(root), **kwargs)


@pytest.fixture
def skip_checksum(monkeypatch):
    monkeypatch.setattr(agn, "VERIFY_CHECKSUM", False)


# --- tokeniser and vocabulary ----------------------------------------------------------------
def test_basic_english_is_torchtexts_rule():
    tok = get_tokenizer("basic_english")
    assert tok("You can now install TorchText using pip!") == [
        "you",
        "can",
        "now",
        "install",
        "torchtext",
        "using",
        "pip",
        "!",
    ]  # torchtext's own docstring example
    assert tok('Don\'t (stop), "go"; now: ok.<br />Next') == [
        "don",
        "'",
        "t",
        "(",
        "stop",
        ")",
        ",",
        "go",
        "now",
        "ok",
        ".",
        "next",
    ]


def test_other_tokenisers_and_case():
    assert get_tokenizer("words")("Hello, World!") == ["hello", ",", "world", "!"]
    assert get_tokenizer("words", lowercase=False)("Hello, World!") == ["Hello", ",", "World", "!"]
    assert get_tokenizer("whitespace")("A b,c") == ["a", "b,c"]
    with pytest.raises(ConfigError, match=r"data.tokenizer='spacy' is unknown.*basic_english"):
        get_tokenizer("spacy")


def test_vocabulary_by_frequency_from_the_given_rows_only():
    types = ["a", "b", "c", "d"]  # type ids 1..4; 0 is padding
    rows = torch.tensor([[1, 2, 2, 0], [3, 2, 1, 0]], dtype=torch.int32)  # b:3 a:2 c:1 d:0
    vocab, table = choose(types, rows, min_freq=1, max_vocab=None)
    assert vocab.itos == ["<pad>", "<unk>", "b", "a", "c"]  # d never occurs in these rows
    assert table.tolist() == [0, 3, 2, 4, 1]
    assert choose(types, rows, min_freq=2, max_vocab=None)[0].itos == ["<pad>", "<unk>", "b", "a"]
    assert choose(types, rows, min_freq=1, max_vocab=3)[0].itos == ["<pad>", "<unk>", "b"]
    ties = torch.tensor([[2, 1, 0]], dtype=torch.int32)  # equal counts: first appearance wins
    assert choose(types, ties, 1, None)[0].itos[2:] == ["a", "b"]
    again = Vocab.from_state(vocab.state())
    assert again.encode(["b", "zzz", "c"]) == [2, 1, 4]


def test_padding_truncation_and_batch_trimming():
    docs = cache.Docs(
        ids=torch.arange(1, 9, dtype=torch.int32),  # doc0: 1 2 3 | doc1: (empty) | doc2: 4..8
        offsets=torch.tensor([0, 3, 3, 8]),
        y=torch.tensor([0, 1, 0]),
    )
    split = pad(docs, max_length=4)
    assert split.tensors["x"].tolist() == [[1, 2, 3, 0], [0, 0, 0, 0], [4, 5, 6, 7]]
    assert split.tensors["lengths"].tolist() == [3, 0, 4]
    batch = next(split.batches(2))
    assert batch["x"].dtype == torch.long and batch["x"].shape == (2, 3)  # trimmed to 3
    assert trim_batch({"x": torch.zeros(2, 5, dtype=torch.int32), "lengths": torch.zeros(2)})[
        "x"
    ].shape == (2, 1)  # all-empty batch keeps one column


# --- AG_NEWS ---------------------------------------------------------------------------------
def test_ag_news_from_files_in_the_real_format(tmp_path, skip_checksum):
    folder = write_ag_news(tmp_path / "ag_news", n_train=400, n_test=100)
    with (folder / "test.csv").open("a") as f:
        f.write('"2","Zebra wins","zebra only appears in the test file"\n')
    lines = (folder / "train.csv").read_text().splitlines()  # a token unique to each train row
    (folder / "train.csv").write_text("".join(f'{r[:-1]} uniq{i}"\n' for i, r in enumerate(lines)))
    data = build_ag_news(tmp_path)
    assert (len(data.train) + len(data.val), len(data.test)) == (400, 101)
    assert data.num_classes == 4 and data.class_names == agn.CLASS_NAMES
    state = data.checkpoint_state()["text"]
    vocab = Vocab.from_state(state["vocab"])
    assert data.text.vocab_size == len(vocab) and data.text.padding_idx == 0
    assert data.batch_inputs == ("x", "lengths")
    facts = data.model_facts()
    assert (facts["vocab_size"], facts["padding_idx"]) == (len(vocab), 0)
    assert {"in_channels", "image_size"}.isdisjoint(facts)
    assert "zebra" not in vocab.stoi and "coach" in vocab.stoi
    # the vocabulary comes from the training rows: validation and test rows add nothing
    assert sum(t.startswith("uniq") for t in vocab.itos) == len(data.train)
    assert torch.isin(torch.arange(2, len(vocab)), data.train.tensors["x"]).all()
    assert state["tokenizer"] == "basic_english" and state["class_names"] == agn.CLASS_NAMES
    assert data.test.tensors["x"][-1, 0] == 1  # "zebra" -> <unk>
    assert sorted(data.train.tensors["y"].unique().tolist()) == [0, 1, 2, 3]


def test_a_file_with_the_wrong_checksum_is_refused(tmp_path):
    write_ag_news(tmp_path / "ag_news")
    with pytest.raises(DataError, match=rf"train.csv has MD5 \w+, expected {agn.MD5['train']}"):
        build_ag_news(tmp_path)


def test_missing_files_without_download_name_folder_and_files(tmp_path):
    with pytest.raises(DataError) as err:
        build_ag_news(tmp_path)
    message = str(err.value)
    assert str(tmp_path / "ag_news") in message and "train.csv and test.csv" in message
    assert "\n" not in message


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_download_is_one_line_naming_folder_and_files(tmp_path, monkeypatch):
    port = _closed_port()  # nothing listens there: the download fails at once
    monkeypatch.setattr(agn, "URLS", {s: f"http://127.0.0.1:{port}/{s}.csv" for s in agn.URLS})
    with pytest.raises(DataError) as err:
        build_ag_news(tmp_path, download=True)
    message = str(err.value)
    assert "downloading train.csv failed" in message and str(tmp_path / "ag_news") in message
    assert "train.csv and test.csv" in message and "\n" not in message
    assert not any((tmp_path / "ag_news").iterdir())  # no partial file left behind


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A local HTTP server with AG_NEWS-format files (the downloader's real code path)."""
    # urllib builds its global opener once, with the proxies of that moment: a test that set a
    # refusing proxy earlier in this process must not leave it behind for this one
    monkeypatch.setattr(urllib.request, "_opener", None)
    site = write_ag_news(tmp_path / "site", n_train=80, n_test=20)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield site, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_verifies_then_keeps_the_files(tmp_path, monkeypatch, served):
    site, url = served
    md5 = {s: hashlib.md5((site / f"{s}.csv").read_bytes()).hexdigest() for s in agn.URLS}
    monkeypatch.setattr(agn, "URLS", {s: f"{url}/{s}.csv" for s in agn.URLS})
    monkeypatch.setattr(agn, "MD5", md5)
    data = build_ag_news(tmp_path / "cache", download=True)
    assert (len(data.train) + len(data.val), len(data.test)) == (80, 20)
    assert (tmp_path / "cache/ag_news/train.csv").read_bytes() == (site / "train.csv").read_bytes()


def test_download_with_a_wrong_checksum_keeps_nothing(tmp_path, monkeypatch, served):
    _, url = served
    monkeypatch.setattr(agn, "URLS", {s: f"{url}/{s}.csv" for s in agn.URLS})
    with pytest.raises(DataError, match="MD5"):
        build_ag_news(tmp_path / "cache", download=True)
    assert list((tmp_path / "cache/ag_news").iterdir()) == []


# --- the corpus cache ------------------------------------------------------------------------
def test_second_build_loads_the_cache_and_settings_key_it(tmp_path, skip_checksum, caplog):
    write_ag_news(tmp_path / "ag_news")
    caplog.set_level(logging.INFO, logger="dlrun")
    first = build_ag_news(tmp_path)
    (cached,) = (tmp_path / "text_cache").iterdir()
    caplog.clear()
    second = build_ag_news(tmp_path, max_vocab=50)  # vocabulary settings reuse the cache
    assert "loaded tokenised ag_news from cache" in caplog.text
    assert list((tmp_path / "text_cache").iterdir()) == [cached]
    assert second.text.vocab_size == 50 < first.text.vocab_size
    same = build_ag_news(tmp_path)
    assert torch.equal(same.train.tensors["x"], first.train.tensors["x"])
    build_ag_news(tmp_path, tokenizer="words")  # tokenisation settings: a new cache entry
    assert len(list((tmp_path / "text_cache").iterdir())) == 2


def test_a_changed_source_or_a_torn_cache_is_rebuilt(tmp_path, skip_checksum, caplog):
    write_ag_news(tmp_path / "ag_news", n_train=100)
    build_ag_news(tmp_path)
    (cached,) = (tmp_path / "text_cache").iterdir()
    cached.write_bytes(cached.read_bytes()[:50])  # torn
    caplog.set_level(logging.INFO, logger="dlrun")
    assert len(build_ag_news(tmp_path).test) == 100
    assert "unreadable" in caplog.text and "tokenised ag_news" in caplog.text
    write_ag_news(tmp_path / "ag_news", n_train=120, seed=1)  # new content: new identity
    data = build_ag_news(tmp_path)
    assert len(data.train) + len(data.val) == 120


# --- the user's CSV --------------------------------------------------------------------------
def build_csv(path: Path, **overrides) -> object:
    kwargs = {
        **TEXT,
        "root": str(path.parent / "data"),
        "text_columns": ["headline", "body"],
        "label_column": "topic",
        "test_fraction": 0.25,
        "split_seed": 0,
        "val_fraction": 0.1,
        "seed": 0,
        **overrides,
    }
    return text_csv(str(path), **kwargs)


def test_text_csv_with_string_labels(tmp_path):
    data = build_csv(write_labelled_csv(tmp_path / "news.csv", n=200))
    assert data.class_names == ["business", "sports", "tech", "world"]
    assert data.run_files["labels.json"] == {
        "label_column": "topic",
        "classes": {"business": 0, "sports": 1, "tech": 2, "world": 3},
    }
    assert (len(data.train) + len(data.val), len(data.test)) == (150, 50)
    assert torch.bincount(data.test.tensors["y"]).min() >= 10  # stratified


def test_text_csv_with_a_separate_test_file(tmp_path):
    train = write_labelled_csv(tmp_path / "train.csv", n=120)
    test = write_labelled_csv(tmp_path / "test.csv", n=30, seed=1)
    data = build_csv(train, test_path=str(test), text_columns="body")
    assert (len(data.train) + len(data.val), len(data.test)) == (120, 30)


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"label_column": "label"}, r"data.label_column: 'label' is not a column .*'topic'"),
        ({"text_columns": ["headline", "text"]}, r"data.text_columns: 'text' is not a column"),
        ({"min_freq": 0}, r"^min_freq=0 is invalid"),  # a ValueError: build adds "data."
        ({"max_length": -1}, r"^max_length=-1 is invalid"),
        ({"test_path": "nowhere.csv"}, r"data.test_path=nowhere.csv does not exist"),
        ({"test_path": "."}, r"data.test_path=. is a folder, not a file"),
    ],
)
def test_text_csv_bad_input(tmp_path, overrides, message):
    with pytest.raises((DataError, ConfigError, ValueError), match=message):
        build_csv(write_labelled_csv(tmp_path / "news.csv", n=20), **overrides)


def test_text_csv_needs_two_classes_and_labels(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("text,label\nhello there,a\nbye now,a\n")
    with pytest.raises(DataError, match=r"one.csv: data.label_column=.label. has one class only"):
        build_csv(path, text_columns=["text"], label_column="label")
    path.write_text("text,label\nhello there,a\nbye now,\n")
    with pytest.raises(DataError, match="data row 2 has an empty 'label'"):
        build_csv(path, text_columns=["text"], label_column="label")
