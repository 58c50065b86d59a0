"""Text models: shapes, padding never changes an output, configs for every variant build."""

from __future__ import annotations

import pytest
import torch

from dlrun import build
from dlrun.errors import ConfigError
from dlrun.models.text import EmbeddingBagClassifier, RNNClassifier

FACTS = {"vocab_size": 50, "padding_idx": 0, "num_classes": 4}


def _docs() -> tuple[torch.Tensor, torch.Tensor]:
    """Three documents of lengths 5, 2, 1 padded to 5; the same padded to 9."""
    gen = torch.Generator().manual_seed(0)
    lengths = torch.tensor([5, 2, 1])
    x = torch.randint(2, 50, (3, 5), generator=gen)
    x[torch.arange(5) >= lengths[:, None]] = 0
    return x, lengths


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_recurrent_output_ignores_padding(cell, bidirectional):
    torch.manual_seed(0)
    model = RNNClassifier(
        **FACTS, embed_dim=8, hidden=6, num_layers=2, bidirectional=bidirectional, cell=cell
    ).eval()
    x, lengths = _docs()
    out = model(x, lengths)
    assert out.shape == (3, 4)
    wider = torch.cat([x, torch.zeros(3, 4, dtype=torch.long)], dim=1)
    torch.testing.assert_close(model(wider, lengths), out)
    # and each document alone gives the same logits as inside the batch
    alone = model(x[1:2, :2], lengths[1:2])
    torch.testing.assert_close(alone, out[1:2])


def test_embedding_bag_is_the_mean_over_real_tokens():
    model = EmbeddingBagClassifier(**FACTS, embed_dim=8).eval()
    x, lengths = _docs()
    out = model(x, lengths)
    expected = model.head(model.bag.weight[x[1, :2]].mean(0, keepdim=True))
    torch.testing.assert_close(out[1:2], expected)
    torch.testing.assert_close(model(torch.cat([x, torch.zeros_like(x)], 1), lengths), out)


def test_bad_cell_is_refused():
    with pytest.raises(ValueError, match="^cell='transformer' is unknown"):
        RNNClassifier(**FACTS, cell="transformer")


@pytest.mark.parametrize(
    "model,cls,cell",
    [
        ("lstm", RNNClassifier, "lstm"),
        ("gru", RNNClassifier, "gru"),
        ("rnn", RNNClassifier, "rnn"),
        ("embedding_bag", EmbeddingBagClassifier, None),
    ],
)
def test_every_text_model_config_builds_from_data_facts(compose, model, cls, cell):
    cfg = compose(f"model={model}", "data=ag_news")
    built = build.build_object(cfg.model, "model", FACTS)
    assert isinstance(built, cls)
    if cell:
        assert type(built.rnn).__name__ == cell.upper()


def test_a_model_that_cannot_take_lengths_is_refused_on_text(compose, tmp_path):
    from tests.textdata import write_labelled_csv

    path = write_labelled_csv(tmp_path / "news.csv", n=40)
    overrides = [
        "data=text_csv",
        f"data.path={path}",
        f"data.root={tmp_path}",
        "data.text_columns=[body]",
        "data.label_column=topic",
    ]
    data = build.build_data(compose("model=mlp", *overrides).data, seed=0)
    with pytest.raises(ConfigError, match=r"MLP cannot read this data.*\['x', 'lengths'\]"):
        build.build_task(compose("model=mlp", *overrides), data, torch.device("cpu"))
    task = build.build_task(compose("model=embedding_bag", *overrides), data, torch.device("cpu"))
    assert task.forward(next(data.train.batches(8))).shape == (8, 4)
