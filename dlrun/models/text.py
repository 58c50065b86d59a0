"""Text classifiers over padded token ids: recurrent (LSTM/GRU/RNN) and EmbeddingBag.

Both take `forward(x, lengths)`: x (B, L) long token ids padded with `padding_idx`, lengths (B,).
`vocab_size`, `padding_idx` and `num_classes` are filled in from the data at run time.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

CELLS: dict[str, type[nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class RNNClassifier(nn.Module):
    """Embedding -> (bi-directional) LSTM/GRU/RNN over packed sequences -> linear over classes.

    The classifier reads the last layer's final hidden state of each direction, so padding never
    enters the recurrence.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        padding_idx: int = 0,
        embed_dim: int = 128,
        hidden: int = 128,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        cell: str = "lstm",
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell={cell!r} is unknown: choose one of {sorted(CELLS)}")
        self.bidirectional = bidirectional
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)
        self.rnn = CELLS[cell](
            embed_dim,
            hidden,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), num_classes)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:  # (B, L), (B,) -> (B, num_classes)
        emb = self.dropout(self.embedding(x))  # (B, L, embed_dim)
        # pack_padded_sequence wants lengths on the CPU (a host copy per batch on a GPU); an
        # empty document is read as one padding token.
        packed = pack_padded_sequence(
            emb, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        _, h = self.rnn(packed)
        h = h[0] if isinstance(h, tuple) else h  # LSTM returns (h_n, c_n)
        # h: (num_layers * directions, B, hidden); the last layer's forward [and backward] state
        last = torch.cat([h[-2], h[-1]], dim=1) if self.bidirectional else h[-1]
        return self.head(self.dropout(last))


class EmbeddingBagClassifier(nn.Module):
    """The fast baseline: the mean (or sum/max) of a document's token embeddings -> linear.

    Padding ids are left out of the mean by EmbeddingBag's `padding_idx`, so `lengths` is unused.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        padding_idx: int = 0,
        embed_dim: int = 64,
        mode: str = "mean",
        init_range: float = 0.5,
    ) -> None:
        super().__init__()
        if mode not in {"mean", "sum", "max"}:
            raise ValueError(f"mode={mode!r} is unknown: choose mean, sum or max")
        self.bag = nn.EmbeddingBag(vocab_size, embed_dim, mode=mode, padding_idx=padding_idx)
        self.head = nn.Linear(embed_dim, num_classes)
        # The torchtext tutorial's initialisation: uniform embeddings and head, zero bias.
        nn.init.uniform_(self.bag.weight, -init_range, init_range)
        nn.init.uniform_(self.head.weight, -init_range, init_range)
        nn.init.zeros_(self.head.bias)
        with torch.no_grad():
            self.bag.weight[padding_idx].zero_()

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:  # (B, L) -> (B, C)
        return self.head(self.bag(x))
