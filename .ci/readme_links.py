"""README.md's relative links must resolve: mkdocs checks docs/, not the README.

A link's file must exist, and a `#anchor` must be a heading of that page (slugged as mkdocs'
table of contents does). Exits 1 listing the broken links.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def slug(heading: str) -> str:
    """Python-Markdown's toc slugify, the anchor mkdocs gives a heading."""
    text = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def broken_links(readme: Path) -> list[str]:
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", readme.read_text()):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        page = readme.parent / path
        if not page.exists():
            broken.append(f"{target}: no such file")
        elif anchor and anchor not in {
            slug(h) for h in re.findall(r"^#+ (.*)$", page.read_text(), re.M)
        }:
            broken.append(f"{target}: no heading with that anchor")
    return broken


if __name__ == "__main__":
    bad = broken_links(ROOT / "README.md")
    for line in bad:
        print(f"README.md: broken link {line}")
    sys.exit(1 if bad else 0)
