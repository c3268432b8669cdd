"""Page-level metrics: detection recall/precision at IoU 0.5, end-to-end line recall, character F1.

Torch-free (NumPy/OpenCV only), shared by ``crnn-ocr bench page`` and the tests.

Conventions: predicted and true lines are matched one to one, greedily by decreasing polygon IoU, pairs
below the threshold never match. Texts are compared after :func:`crnn_ocr.charset.normalize_text`, with
spaces removed and case folded (receipt labels are upper case; Chinese labels mark spaces only where
clearly visible). Page figures are summed over pages before dividing (micro averages).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from crnn_ocr.charset import normalize_text
from crnn_ocr.detect.geometry import as_quad, polygon_iou

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class TrueLine:
    """One labelled line of a page."""

    quad: np.ndarray
    text: str


def read_page_labels(path: str | Path) -> list[TrueLine]:
    """Lines of a ``NAME.json`` label file: ``{"lines": [{"box": [4 or 8 numbers], "text": "..."}]}``."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("lines"), list):
        raise ValueError(f"{path}: expected an object with a 'lines' list")
    return [TrueLine(as_quad(ln["box"]), str(ln.get("text", ""))) for ln in data["lines"]]


def find_pages(folder: str | Path) -> list[tuple[Path, Path]]:
    """``(image, labels)`` pairs of a page folder: every image that has a ``.json`` beside it, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    pairs = [(p, p.with_suffix(".json")) for p in sorted(folder.iterdir())
             if p.suffix.lower() in IMAGE_SUFFIXES and p.with_suffix(".json").is_file()]
    if not pairs:
        raise FileNotFoundError(f"{folder}: no image with a .json label file beside it")
    return pairs


def iou_matrix(pred: Sequence[np.ndarray], true: Sequence[np.ndarray]) -> np.ndarray:
    """``(len(pred), len(true))`` polygon IoUs; pairs whose bounding boxes are disjoint are skipped."""
    m = np.zeros((len(pred), len(true)), dtype=np.float64)
    if not len(pred) or not len(true):
        return m
    pb = np.array([[q[:, 0].min(), q[:, 1].min(), q[:, 0].max(), q[:, 1].max()] for q in pred])
    tb = np.array([[q[:, 0].min(), q[:, 1].min(), q[:, 0].max(), q[:, 1].max()] for q in true])
    for i, (p, b) in enumerate(zip(pred, pb, strict=True)):
        near = np.flatnonzero((tb[:, 0] < b[2]) & (tb[:, 2] > b[0]) & (tb[:, 1] < b[3]) & (tb[:, 3] > b[1]))
        for j in near:
            m[i, j] = polygon_iou(p, true[j])
    return m


def match(ious: np.ndarray, threshold: float = 0.5) -> list[tuple[int, int]]:
    """One-to-one ``(pred, true)`` pairs, greedily by decreasing IoU, each at least ``threshold``.

    >>> match(np.array([[0.9, 0.6], [0.7, 0.1]]))
    [(0, 0)]
    """
    if ious.size == 0:
        return []
    pi, ti = np.nonzero(ious >= threshold)
    order = np.argsort(-ious[pi, ti], kind="stable")
    used_p: set[int] = set()
    used_t: set[int] = set()
    pairs = []
    for k in order:
        p, t = int(pi[k]), int(ti[k])
        if p not in used_p and t not in used_t:
            used_p.add(p)
            used_t.add(t)
            pairs.append((p, t))
    return pairs


def text_key(text: str) -> str:
    """The form in which texts are compared: normalised, no spaces, case folded."""
    return normalize_text(text).replace(" ", "").casefold()


def char_counts(texts: Sequence[str]) -> Counter[str]:
    """Bag of characters of a page (spaces removed, case folded)."""
    c: Counter[str] = Counter()
    for t in texts:
        c.update(text_key(t))
    return c


@dataclass
class PageCounts:
    """Raw counts of one page (or a sum of pages), from which every rate is computed."""

    pages: int = 0
    true_lines: int = 0
    pred_lines: int = 0
    det_matched: int = 0
    e2e_matched: int = 0
    true_chars: int = 0
    pred_chars: int = 0
    common_chars: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def __add__(self, o: PageCounts) -> PageCounts:
        return PageCounts(*(a + b for a, b in zip(asdict(self).values(), asdict(o).values(), strict=True)))

    def rates(self) -> dict[str, float]:
        """Detection recall/precision/F1, end-to-end line recall, character P/R/F1, seconds per page."""
        def div(a: float, b: float) -> float:
            return a / b if b else 0.0

        def f1(p: float, r: float) -> float:
            return div(2 * p * r, p + r)

        det_r, det_p = div(self.det_matched, self.true_lines), div(self.det_matched, self.pred_lines)
        ch_r, ch_p = div(self.common_chars, self.true_chars), div(self.common_chars, self.pred_chars)
        return {"det_recall": det_r, "det_precision": det_p, "det_f1": f1(det_p, det_r),
                "e2e_recall": div(self.e2e_matched, self.true_lines), "char_recall": ch_r,
                "char_precision": ch_p, "char_f1": f1(ch_p, ch_r), "s_per_page": div(self.seconds, self.pages),
                "cpu_s_per_page": div(self.cpu_seconds, self.pages)}


def score_page(pred_quads: Sequence[np.ndarray], pred_texts: Sequence[str] | None, truth: Sequence[TrueLine],
               seconds: float = 0.0, iou: float = 0.5, cpu_seconds: float = 0.0) -> PageCounts:
    """Counts for one page; ``pred_texts=None`` scores detection only (no end-to-end or character figures).

    ``seconds`` is wall time; ``cpu_seconds`` the process CPU time (all threads), steadier on a busy host.
    """
    pairs = match(iou_matrix(list(pred_quads), [t.quad for t in truth]), iou)
    counts = PageCounts(pages=1, true_lines=len(truth), pred_lines=len(pred_quads), det_matched=len(pairs),
                        seconds=seconds, cpu_seconds=cpu_seconds)
    if pred_texts is None:
        return counts
    counts.e2e_matched = sum(text_key(pred_texts[p]) == text_key(truth[t].text) for p, t in pairs)
    tc, pc = char_counts([t.text for t in truth]), char_counts(pred_texts)
    counts.true_chars, counts.pred_chars = sum(tc.values()), sum(pc.values())
    counts.common_chars = sum((tc & pc).values())
    return counts
