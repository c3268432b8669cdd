"""Labelled line sets on disk: a folder with ``labels.tsv`` (``filename<TAB>text`` per line, UTF-8) or an LMDB set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crnn_ocr.data.lmdb_set import LmdbDataset, is_lmdb
from crnn_ocr.preprocess import load_gray

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


class LabelsTsvDataset:
    """A ``labels.tsv`` folder as a dataset: ``ds[i] -> (gray uint8 image, raw label)``.

    The index is read once; images are decoded on access (as the trainer and DataLoader workers need).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.lines = read_labels_tsv(folder)

    def __len__(self) -> int:
        return len(self.lines)

    def __getitem__(self, i: int) -> tuple[np.ndarray, str]:
        line = self.lines[i]
        return load_gray(line.path), line.text


def open_dataset(path: str | Path) -> LabelsTsvDataset | LmdbDataset:
    """Open a labelled line set, telling a ``labels.tsv`` folder (or file) from an LMDB environment.

    >>> ds = open_dataset("../shared/data/real_dev/lines_zh")  # doctest: +SKIP
    >>> image, text = ds[0]  # doctest: +SKIP
    """
    p = Path(path)
    if is_lmdb(p):
        return LmdbDataset(p)
    if (p.is_dir() and (p / LABELS_FILE).is_file()) or (p.is_file() and p.suffix == ".tsv"):
        return LabelsTsvDataset(p)
    raise FileNotFoundError(f"{path}: neither a folder with {LABELS_FILE} nor an LMDB set (data.mdb)")
