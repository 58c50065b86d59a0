"""The real `dlrun` command on text: AG_NEWS-format files, the user's CSV, checkpoints, accuracy."""

from __future__ import annotations

import json
import random

import pytest

from dlrun import checkpoint
from dlrun.data.tokenize import get_tokenizer
from dlrun.data.vocab import Vocab
from dlrun.models.text import EmbeddingBagClassifier
from tests.conftest import read_metrics, run_dirs
from tests.textdata import KEYWORDS, document, write_ag_news, write_labelled_csv

SKIP = {"checksums": False}  # the tiny files are not the published AG_NEWS


@pytest.mark.parametrize("model", ["lstm", "embedding_bag"])
def test_ag_news_end_to_end_with_vocab_in_the_checkpoint(dlrun, tmp_path, model):
    write_ag_news(tmp_path / "data" / "ag_news")
    proc = dlrun(f"model={model}", "data=ag_news", "debug=smoke", **SKIP)
    assert "tokenised ag_news" in proc.stdout and "cached in" in proc.stdout
    (run,) = run_dirs(tmp_path)
    m = read_metrics(run)
    assert m["status"] == "completed" and m["task"] == "classification"
    assert len(m["test"]["confusion_matrix"]) == 4  # cross-entropy over all four classes
    labels = json.loads((run / "labels.json").read_text())
    assert labels["classes"] == {"World": 0, "Sports": 1, "Business": 2, "Sci/Tech": 3}
    saved = checkpoint.load(run / "checkpoints" / "best.pt")  # weights_only load
    text = saved["data_state"]["text"]
    assert text["vocab"][:2] == ["<pad>", "<unk>"] and "coach" in text["vocab"]
    rows = saved["model"]["embedding.weight" if model == "lstm" else "bag.weight"].shape[0]
    assert rows == len(text["vocab"])


@pytest.mark.slow  # two runs; the unit tests cover the cache in-process
def test_second_run_reuses_the_tokenised_cache(dlrun, tmp_path):
    write_ag_news(tmp_path / "data" / "ag_news", n_train=200)
    dlrun("model=embedding_bag", "data=ag_news", "debug=smoke", **SKIP)
    proc = dlrun("model=embedding_bag", "data=ag_news", "debug=smoke", "seed=1", **SKIP)
    assert "loaded tokenised ag_news from cache" in proc.stdout
    assert len(list((tmp_path / "data" / "text_cache").iterdir())) == 1


def test_missing_ag_news_offline_is_one_line(dlrun, tmp_path):
    proc = dlrun("model=lstm", "data=ag_news", "data.download=false", expect_fail=True)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("dlrun: error: AG_NEWS is not in data/ag_news")
    assert "train.csv and test.csv" in line


def test_text_csv_string_labels_write_the_mapping(dlrun, tmp_path):
    write_labelled_csv(tmp_path / "news.csv", n=200)
    dlrun(
        "model=gru",
        "data=text_csv",
        "data.path=news.csv",
        "data.text_columns=[headline,body]",
        "data.label_column=topic",
        "debug=smoke",
    )
    (run,) = run_dirs(tmp_path)
    assert json.loads((run / "labels.json").read_text()) == {
        "label_column": "topic",
        "classes": {"business": 0, "sports": 1, "tech": 2, "world": 3},
    }
    assert read_metrics(run)["status"] == "completed"
    # The CSV loses its "business" rows after training: an eval must keep the trained class
    # numbers (by name), not renumber sports..world from 0 (which scored garbage silently).
    lines = (tmp_path / "news.csv").read_text().splitlines(keepends=True)
    (tmp_path / "news.csv").write_text(
        "".join(ln for ln in lines if not ln.rstrip().endswith(",business"))
    )
    dlrun("mode=eval", f"ckpt={run}")
    cm = read_metrics(run_dirs(tmp_path)[-1])["test"]["confusion_matrix"]
    assert len(cm) == 4 and sum(cm[0]) == 0 and all(sum(row) for row in cm[1:])


KEYWORD_RUNS = {
    "embedding_bag": ["optimizer.lr=0.01", "trainer.epochs=4"],
    "lstm": ["model.hidden=64", "model.embed_dim=64", "optimizer.lr=0.005", "trainer.epochs=5"],
}


@pytest.mark.parametrize("model", list(KEYWORD_RUNS))
def test_keyword_corpus_reaches_095_test_accuracy(dlrun, tmp_path, model):
    write_labelled_csv(tmp_path / "news.csv", n=1000)
    dlrun(
        f"model={model}",
        "data=text_csv",
        "data.path=news.csv",
        "data.label_column=topic",
        "data.text_columns=[headline,body]",
        "trainer.batch_size=32",
        "trainer.progress=false",
        *KEYWORD_RUNS[model],
    )
    (run,) = run_dirs(tmp_path)
    assert read_metrics(run)["test"]["accuracy"] >= 0.95  # chance is 0.25
    if model == "embedding_bag":
        _reload_and_classify_new_text(run)


def _reload_and_classify_new_text(run):
    """A model rebuilt from best.pt with the vocabulary saved in it classifies unseen text."""
    saved = checkpoint.load(run / "checkpoints" / "best.pt")
    text = saved["data_state"]["text"]
    vocab = Vocab.from_state(text["vocab"])
    tokenize = get_tokenizer(text["tokenizer"], text["lowercase"])
    kwargs = {k: v for k, v in saved["config"]["model"].items() if k != "_target_"}
    model = EmbeddingBagClassifier(len(vocab), len(text["class_names"]), 0, **kwargs)
    model.load_state_dict(saved["model"])
    model.eval()
    rng, right = random.Random(7), 0
    for _ in range(40):
        label = rng.choice(list(KEYWORDS))
        ids = vocab.encode_text(" ".join(document(rng, label)), tokenize)[None]
        right += text["class_names"][int(model(ids).argmax())] == label
    assert right >= 38


def test_eval_run_reuses_the_saved_vocabulary_and_reproduces_test_metrics(dlrun, tmp_path):
    write_ag_news(tmp_path / "data" / "ag_news")
    dlrun(
        "model=embedding_bag", "data=ag_news", "trainer.epochs=2", "trainer.progress=false", **SKIP
    )
    (run,) = run_dirs(tmp_path)
    # More training text appears after the run: a fresh vocabulary would differ,
    # the saved one must win.
    write_ag_news(tmp_path / "data" / "ag_news", n_train=600, seed=1)
    dlrun("mode=eval", f"ckpt={run}", **SKIP)
    evaluated = read_metrics(run_dirs(tmp_path)[-1])
    assert evaluated["mode"] == "eval" and evaluated["test"]["confusion_matrix"]
    assert evaluated["parameters"] == read_metrics(run)["parameters"]  # same vocabulary size
