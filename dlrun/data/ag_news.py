"""The AG_NEWS files: download into the data folder, verify their checksums, read their rows.

The CSVs have no header; each row is "class index 1-4","title","description". The text of a row
is title and description joined by a space (as torchtext did), its class the index minus one.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

from dlrun.atomic import temp_beside
from dlrun.download import socket_timeout
from dlrun.errors import DataError

log = logging.getLogger("dlrun")

# The release torchtext's AG_NEWS used: URLs, MD5 checksums and row counts of each split.
URLS = {
    "train": "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/train.csv",
    "test": "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/test.csv",
}
MD5 = {"train": "b1a00f826fdfbd249f79597b59e1dc12", "test": "d52ea96a97a2d943681189a97654912d"}
NUM_ROWS = {"train": 120_000, "test": 7_600}
CLASS_NAMES = ["World", "Sports", "Business", "Sci/Tech"]

# TEST ONLY: the tests set this to False from Python to accept tiny files in the real format
# (never an environment variable or a config key: nothing a user or a file sets reaches it).
VERIFY_CHECKSUM = True


def verify(path: Path, split: str) -> None:
    """Refuse a file that is not the published AG_NEWS split."""
    if not VERIFY_CHECKSUM:
        return
    # torchvision here only: a text run reads the files (and imports it) only on a cache miss
    from torchvision.datasets.utils import calculate_md5, check_integrity

    if not check_integrity(str(path), MD5[split]):
        raise DataError(
            f"{path} has MD5 {calculate_md5(str(path))}, expected {MD5[split]} (AG_NEWS {split}): "
            "the file is corrupt or not the AG_NEWS release; delete it and run again to download it"
        )


def _download(split: str, dest: Path) -> None:
    """Fetch one split into a temporary file beside `dest`; rename only once it verifies."""
    from torchvision.datasets.utils import download_url

    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info(f"downloading AG_NEWS {split} from {URLS[split]}")
    fd, tmp = temp_beside(dest, ".part")  # a unique name beside dest...
    os.close(fd)
    Path(tmp).unlink()  # ...but no file: download_url would take an existing one as downloaded
    try:
        with socket_timeout():
            download_url(URLS[split], str(dest.parent), Path(tmp).name)
        verify(Path(tmp), split)
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def ensure_files(folder: Path, download: bool) -> dict[str, Path]:
    """Paths of train.csv and test.csv in `folder`, downloading the missing ones if allowed."""
    paths = {split: folder / f"{split}.csv" for split in URLS}
    missing = [split for split, path in paths.items() if not path.is_file()]
    expected = "expected train.csv and test.csv (AG_NEWS CSVs: class 1-4, title, description)"
    if missing and not download:
        raise DataError(
            f"AG_NEWS is not in {folder} ({expected}) and data.download=false: copy them there"
        )
    for split in missing:
        try:
            _download(split, paths[split])
        except OSError as err:  # offline, DNS, HTTP error, timeout
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise DataError(
                f"AG_NEWS is not in {folder} ({expected}) and downloading {split}.csv failed "
                f"({reason}): copy the files there, or set data.root / DLRUN_DATA_DIR to a folder "
                "that has them"
            ) from None
    return paths


def read_rows(path: Path) -> list[tuple[str, int]]:
    """(title + " " + description, class index 0-3) for every row of an AG_NEWS CSV."""
    rows = []
    with path.open(newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.reader(f), start=1):
            if len(row) < 2 or row[0].strip() not in {"1", "2", "3", "4"}:
                raise DataError(
                    f'{path} line {line} is not an AG_NEWS row ("class 1-4","title",'
                    f'"description"): {",".join(row)[:60]!r}'
                )
            rows.append((" ".join(row[1:]), int(row[0]) - 1))
    return rows
