"""``crnn-ocr bench page``: our pipeline and RapidOCR (PP-OCRv4) on the same labelled pages, side by side.

A *system* maps a BGR page and its true line quads to ``(quads, texts)``; only the true-box system looks
at the quads (it reads the labelled boxes: recognition with a perfect detector, which splits a page's
errors into detection and recognition). ``texts`` is None for a detector-only system, which is then scored
on detection alone. Time is measured around the system call only (decoding excluded), as wall time and as
process CPU time (all threads together: steadier than wall time on a shared machine).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from crnn_ocr.detect.base import DetectedLine
from crnn_ocr.detect.metrics import PageCounts, find_pages, read_page_labels, score_page
from crnn_ocr.preprocess import load_gray

PageSystem = Callable[[np.ndarray, Sequence[np.ndarray]], tuple[list[np.ndarray], list[str] | None]]


def _boxes_and_texts(lines: Sequence[Any]) -> tuple[list[np.ndarray], list[str]]:
    """A system's output from our pipeline's :class:`~crnn_ocr.results.LineResult` lines."""
    return [np.asarray(ln.box, dtype=np.float32) for ln in lines], [ln.text for ln in lines]


def ocr_system(ocr: Any) -> PageSystem:
    """Our :class:`~crnn_ocr.pipeline.OCR` as a system (detection + recognition)."""
    def run(page: np.ndarray, _truth: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[str] | None]:
        return _boxes_and_texts(ocr(page))

    return run


def true_box_system(ocr: Any) -> PageSystem:
    """Our recogniser on the labelled line boxes (a perfect detector), cropped as the pipeline crops."""
    def run(page: np.ndarray, truth: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[str] | None]:
        detected = [DetectedLine(np.asarray(q, dtype=np.float32)) for q in truth]
        return _boxes_and_texts(ocr.read_lines(load_gray(page), detected))

    return run


def detector_system(detector: Any) -> PageSystem:
    """A detector alone as a system (scored on detection only)."""
    def run(page: np.ndarray, _truth: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[str] | None]:
        return [ln.quad for ln in detector(page)], None

    return run


def rapidocr_system(detect_only: bool = False, threads: int | None = None) -> PageSystem:
    """RapidOCR (``rapidocr_onnxruntime``, the ``bench`` extra) as a system; ImportError when missing."""
    from rapidocr_onnxruntime import RapidOCR

    kw = {} if threads is None else {"intra_op_num_threads": threads}
    engine = RapidOCR(**kw)

    def run(page: np.ndarray, _truth: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[str] | None]:
        if detect_only:
            boxes, _ = engine(page, use_det=True, use_cls=False, use_rec=False)
            return [np.asarray(b, dtype=np.float32).reshape(4, 2) for b in (boxes or [])], None
        res, _ = engine(page)
        res = res or []
        return [np.asarray(r[0], dtype=np.float32).reshape(4, 2) for r in res], [str(r[1]) for r in res]

    return run


@dataclass
class SystemReport:
    """Figures of one system over one page folder."""

    system: str
    data: str
    detection_only: bool
    counts: PageCounts
    per_page: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: rates first, raw counts and per-page figures after."""
        rates = self.counts.rates()
        if self.detection_only:
            rates = {k: v for k, v in rates.items() if k.startswith("det_") or k.endswith("s_per_page")}
        return {"system": self.system, "data": self.data, "detection_only": self.detection_only,
                **{k: round(v, 4) for k, v in rates.items()}, "counts": asdict(self.counts),
                "per_page": self.per_page}


def run_page_bench(folder: str | Path, systems: dict[str, PageSystem], iou: float = 0.5) -> list[SystemReport]:
    """Score every system on every labelled page of ``folder`` (systems take turns page by page)."""
    pages = find_pages(folder)
    reports: dict[str, SystemReport] = {}
    for image_path, label_path in pages:
        truth = read_page_labels(label_path)
        page = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if page is None:
            raise ValueError(f"cannot read image {image_path}")
        for name, system in systems.items():
            t0, c0 = time.perf_counter(), time.process_time()
            quads, texts = system(page, [ln.quad for ln in truth])
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            counts = score_page(quads, texts, truth, seconds, iou, cpu)
            rep = reports.setdefault(name, SystemReport(name, str(folder), texts is None, PageCounts()))
            rep.counts = rep.counts + counts
            rep.per_page.append({"page": image_path.name, **{k: round(v, 4) for k, v in counts.rates().items()}})
    return list(reports.values())


COLUMNS = ("det_recall", "det_precision", "det_f1", "e2e_recall", "char_f1", "s_per_page", "cpu_s_per_page")


def markdown_table(reports: Sequence[SystemReport]) -> str:
    """The reports as a Markdown table (``-`` where a figure does not apply)."""
    head = "| system | data | pages | " + " | ".join(COLUMNS) + " |"
    rule = "|" + "---|" * (len(COLUMNS) + 3)
    rows = [head, rule]
    for r in reports:
        d = r.to_dict()
        cells = [f"{d[c]:.3f}" if c in d else "-" for c in COLUMNS]
        rows.append(f"| {r.system} | {Path(r.data).name} | {r.counts.pages} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def write_json(reports: Sequence[SystemReport], path: str | Path, meta: dict[str, Any] | None = None) -> None:
    """Write the reports as JSON."""
    payload = {"meta": meta or {}, "systems": [r.to_dict() for r in reports]}
    Path(path).write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
