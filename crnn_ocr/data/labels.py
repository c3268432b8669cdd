"""Labelled line sets on disk: a folder with ``labels.tsv`` (``filename<TAB>text`` per line, UTF-8)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LABELS_FILE = "labels.tsv"


@dataclass(frozen=True)
class LabelledLine:
    """One line image on disk and its (raw, not yet normalised) label."""

    path: Path
    text: str


def read_labels_tsv(folder: str | Path) -> list[LabelledLine]:
    """Read ``folder/labels.tsv``; malformed rows raise with their line number, missing images too."""
    folder = Path(folder)
    tsv = folder / LABELS_FILE if folder.is_dir() else folder
    if not tsv.is_file():
        raise FileNotFoundError(f"no {LABELS_FILE} in {folder}")
    out: list[LabelledLine] = []
    for n, row in enumerate(tsv.read_text(encoding="utf-8").splitlines(), 1):
        if not row.strip():
            continue
        if "\t" not in row:
            raise ValueError(f"{tsv}:{n}: expected 'filename<TAB>text', got {row[:60]!r}")
        name, text = row.split("\t", 1)
        path = tsv.parent / name
        if not path.is_file():
            raise FileNotFoundError(f"{tsv}:{n}: image {name} not found")
        out.append(LabelledLine(path, text))
    return out
