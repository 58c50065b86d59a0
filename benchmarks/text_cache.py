"""Time building an AG_NEWS-sized text dataset cold (read + tokenise + cache) and warm (cache).

Writes 120,000 train / 7,600 test rows in the AG_NEWS format (synthetic words, about 40 tokens a
row like the real articles) into a temporary folder, then builds `data=ag_news` twice:

    python benchmarks/text_cache.py
"""

from __future__ import annotations

import csv
import itertools
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlrun.data import ag_news as agn  # noqa: E402
from dlrun.data.text import ag_news  # noqa: E402


def write(folder: Path) -> None:
    rng = random.Random(0)
    words = [f"word{i}" for i in range(60_000)]
    cum = list(itertools.accumulate(1 / (i + 1) for i in range(len(words))))  # Zipf-like
    folder.mkdir(parents=True)
    for name, n in [("train.csv", 120_000), ("test.csv", 7_600)]:
        with (folder / name).open("w", newline="") as f:
            writer = csv.writer(f, quoting=csv.QUOTE_ALL)
            for _ in range(n):
                body = rng.choices(words, cum_weights=cum, k=rng.randint(20, 60))
                writer.writerow(
                    [rng.randint(1, 4), " ".join(body[:6]).title(), " ".join(body[6:]) + "."]
                )


def build(root: Path) -> float:
    started = time.perf_counter()
    data = ag_news(str(root), False, "basic_english", True, 1, None, 256, 0.05, 0)
    seconds = time.perf_counter() - started
    print(
        f"  {len(data.train):,} train / {len(data.val):,} val / {len(data.test):,} test, "
        f"vocabulary {data.text.vocab_size:,}, "
        f"padded width {data.input_shape[0]}: {seconds:.2f} s"
    )
    return seconds


def main() -> None:
    os.environ[agn.SKIP_CHECKSUM_ENV] = "1"  # synthetic files, not the published release
    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp) / "ag_news")
        print("cold (read, tokenise, write the cache):")
        cold = build(Path(tmp))
        print("warm (load the cache, choose the vocabulary, pad):")
        warm = build(Path(tmp))
    print(f"warm / cold: {warm / cold:.2f} ({cold / warm:.1f}x faster)")


if __name__ == "__main__":
    main()
