"""Tokenisers for text data: plain functions from a string to a list of tokens.

`basic_english` is the classic torchtext rule (lowercase, split off . , ( ) ! ? and ', drop " ; :),
reimplemented here because torchtext no longer loads beside current torch.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from dlrun.errors import ConfigError

Tokenizer = Callable[[str], list[str]]

# (pattern, replacement) applied in this order, then split on whitespace: torchtext's
# `_basic_english_normalize`, so vocabularies match models trained with it.
_BASIC_ENGLISH = [
    (re.compile(p), r)
    for p, r in [
        (r"\'", " '  "),
        (r"\"", ""),
        (r"\.", " . "),
        (r"<br \/>", " "),
        (r",", " , "),
        (r"\(", " ( "),
        (r"\)", " ) "),
        (r"\!", " ! "),
        (r"\?", " ? "),
        (r"\;", " "),
        (r"\:", " "),
        (r"\s+", " "),
    ]
]
_WORDS = re.compile(r"\w+|[^\w\s]")


def _basic_english(text: str) -> list[str]:
    for pattern, replacement in _BASIC_ENGLISH:
        text = pattern.sub(replacement, text)
    return text.split()


def _words(text: str) -> list[str]:
    """Runs of word characters, and every other non-space character on its own."""
    return _WORDS.findall(text)


TOKENIZERS: dict[str, Tokenizer] = {
    "basic_english": _basic_english,
    "words": _words,
    "whitespace": str.split,
}


def get_tokenizer(name: str, lowercase: bool = True) -> Tokenizer:
    """The tokeniser called `name`, lowercasing its input first when `lowercase` is set."""
    if name not in TOKENIZERS:
        raise ConfigError(f"data.tokenizer={name!r} is unknown: choose one of {sorted(TOKENIZERS)}")
    split = TOKENIZERS[name]
    if not lowercase:
        return split
    return lambda text: split(text.lower())
