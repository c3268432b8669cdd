"""Input expansion: folders (recursive), globs, image files and PDFs -> a sorted list of files, then pages."""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pbm", ".pgm",
                            ".ppm", ".jp2"})
DOCUMENT_SUFFIXES = IMAGE_SUFFIXES | {".pdf"}
"""Suffixes picked up when a folder or glob is expanded (explicitly named files are always taken)."""


def is_document(path: Path) -> bool:
    """Whether a file found in a folder or by a glob is one to read (by suffix, case-insensitive)."""
    return path.suffix.lower() in DOCUMENT_SUFFIXES


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Every file named by ``inputs``, absolute, deduplicated, sorted (so runs plan the same task list).

    A folder contributes its documents recursively, a pattern with ``*``, ``?`` or ``[`` its matching
    documents (``**`` recurses); a named file is taken whatever its suffix, so a corrupt or mistyped file
    is reported in the output instead of being silently dropped.

    Raises:
        FileNotFoundError: an input that is neither a file, a folder nor a pattern matching anything.
    """
    found: set[Path] = set()
    for item in inputs:
        text = str(item)
        p = Path(text)
        if p.is_dir():
            found.update(f for f in p.rglob("*") if f.is_file() and is_document(f))
        elif p.is_file():
            found.add(p)
        elif glob.has_magic(text):
            matches = [Path(m) for m in glob.glob(text, recursive=True)]
            files = {f for m in matches for f in (m.rglob("*") if m.is_dir() else [m]) if f.is_file()
                     and is_document(f)}
            if not files:
                raise FileNotFoundError(f"no images or PDFs match {text!r}")
            found.update(files)
        else:
            raise FileNotFoundError(f"no such file or folder: {text}")
    return sorted({f.absolute() for f in found})


def page_count(path: Path) -> int:
    """Pages of a file: a PDF's pages, a TIFF's frames, else 1 (the image is decoded later, by a worker).

    Raises:
        ValueError: a PDF or TIFF that cannot be opened.
    """
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        import pypdfium2 as pdfium

        try:
            pdf = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as e:
            raise ValueError(f"cannot open PDF: {e}") from None
        try:
            return len(pdf)
        finally:
            pdf.close()
    if suffix in (".tif", ".tiff"):
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                return int(getattr(img, "n_frames", 1))
        except (OSError, UnidentifiedImageError) as e:
            raise ValueError(f"cannot open TIFF: {e}") from None
    return 1
