"""A vocabulary: token <-> id, with <pad> = 0 and <unk> = 1, chosen by frequency in training text.

The corpus cache stores documents as "type ids" (1-based indices into the list of every distinct
token seen, 0 = padding). A Vocab is chosen from the training rows' type counts and applied as one
lookup table, so changing `min_freq`/`max_vocab` or the validation split needs no re-tokenising.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from dlrun.data.tokenize import Tokenizer

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1


@dataclass
class Vocab:
    """`itos[i]` is the token with id i; ids 0 and 1 are <pad> and <unk>."""

    itos: list[str]
    stoi: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.itos[:2] != [PAD, UNK]:
            raise ValueError(f"a vocabulary starts with {PAD}, {UNK}; got {self.itos[:2]}")
        self.stoi = {token: i for i, token in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: list[str]) -> list[int]:
        return [self.stoi.get(t, UNK_ID) for t in tokens]

    def encode_text(self, text: str, tokenizer: Tokenizer) -> Tensor:
        """Token ids of one text (shape (L,), long), e.g. to classify new text with a checkpoint."""
        return torch.tensor(self.encode(tokenizer(text)), dtype=torch.long)

    def state(self) -> list[str]:
        """Plain list for checkpoints (loadable with weights_only=True)."""
        return list(self.itos)

    @classmethod
    def from_state(cls, itos: list[str]) -> Vocab:
        return cls(list(itos))

    def table_for(self, types: list[str], dtype: torch.dtype) -> Tensor:
        """Lookup table from a corpus's type ids to this vocabulary's ids (<unk> for the rest)."""
        ids = [PAD_ID] + [self.stoi.get(t, UNK_ID) for t in types]
        return torch.tensor(ids, dtype=dtype)


def choose(
    types: list[str], type_ids: Tensor, min_freq: int, max_vocab: int | None
) -> tuple[Vocab, Tensor]:
    """Vocab from the type ids of the training rows (0 = padding, ignored), and the lookup table
    mapping every type id to its vocab id (<unk> for the rest).

    Tokens are ranked by count, ties in order of first appearance; `max_vocab` counts the two
    special tokens.
    """
    counts = torch.bincount(type_ids.flatten(), minlength=len(types) + 1)
    counts[0] = 0  # padding is not a token
    ranked = torch.sort(counts[1:], descending=True, stable=True).indices + 1
    kept = ranked[counts[ranked] >= min_freq]
    if max_vocab is not None:
        kept = kept[: max(max_vocab - 2, 0)]
    table = torch.full((len(types) + 1,), UNK_ID, dtype=type_ids.dtype)
    table[0] = PAD_ID
    table[kept] = torch.arange(2, len(kept) + 2, dtype=type_ids.dtype)
    return Vocab([PAD, UNK] + [types[i - 1] for i in kept.tolist()]), table
