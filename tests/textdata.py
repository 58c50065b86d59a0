"""Tiny text corpora written by tests in the real on-disk formats (AG_NEWS CSVs, headed CSVs).

The label of every document is carried by a few class keywords scattered among filler words, so
a working classifier separates the classes almost perfectly and a broken one stays near chance.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

KEYWORDS = {
    "world": ["election", "minister", "treaty"],
    "sports": ["goal", "coach", "league"],
    "business": ["stocks", "profit", "merger"],
    "tech": ["software", "chip", "internet"],
}
FILLER = [f"w{i}" for i in range(150)]


def document(rng: random.Random, label: str) -> list[str]:
    """6-20 filler words with two of the class's keywords at random places."""
    words = [rng.choice(FILLER) for _ in range(rng.randint(6, 20))]
    for keyword in rng.sample(KEYWORDS[label], 2):
        words.insert(rng.randrange(len(words) + 1), keyword)
    return words


def write_ag_news(folder: Path, n_train: int = 400, n_test: int = 100, seed: int = 0) -> Path:
    """train.csv and test.csv as AG_NEWS ships them:
    no header, "class 1-4","title","description"."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    labels = list(KEYWORDS)
    for name, n in [("train.csv", n_train), ("test.csv", n_test)]:
        with (folder / name).open("w", newline="") as f:
            writer = csv.writer(f, quoting=csv.QUOTE_ALL)
            for _ in range(n):
                c = rng.randrange(4)
                words = document(rng, labels[c])
                title = " ".join(words[:4]).title()
                writer.writerow([str(c + 1), title, " ".join(words[4:]) + ", (it said)."])
    return folder


def write_labelled_csv(path: Path, n: int = 400, seed: int = 0) -> Path:
    """A headed CSV with two text columns and string labels."""
    rng = random.Random(seed)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "headline", "body", "topic"])
        for i in range(n):
            label = rng.choice(list(KEYWORDS))
            words = document(rng, label)
            writer.writerow([i, " ".join(words[:3]), " ".join(words[3:]), label])
    return path
