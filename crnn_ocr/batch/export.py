"""Document outputs built from the JSONL records: hOCR and searchable PDF (page image + invisible text).

Both are made after a run from the whole output file, so they are complete and consistent whatever runs
it took to get there. A file with an error record on any page is not exported (a PDF with a page missing
would mislead).
"""

from __future__ import annotations

import math
import os
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from crnn_ocr.batch.pages import DEFAULT_DPI, read_page

FORMATS = {"hocr": ".hocr", "pdf": ".pdf"}


def complete_documents(records: Iterable[dict[str, Any]]) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Records grouped by source with pages ascending, for sources without errors; and the failed sources."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    failed: set[str] = set()
    for r in records:
        if "error" in r:
            failed.add(r["source"])
        else:
            groups[r["source"]].append(r)
    docs = {s: sorted(pages, key=lambda r: r["page"]) for s, pages in sorted(groups.items()) if s not in failed}
    return docs, sorted(failed)


def output_names(sources: Sequence[str], suffix: str) -> dict[str, Path]:
    """Paths (relative to an output folder) mirroring the sources below their common folder.

    ``a/x.png`` becomes ``a/x.pdf``; where two sources would meet (``x.png`` and ``x.pdf``), they keep their
    own suffix too (``x.png.pdf``, ``x.pdf.pdf``).
    """
    if not sources:
        return {}
    root = Path(os.path.commonpath([str(Path(s).parent) for s in sources]))
    plain = {s: Path(s).relative_to(root).with_suffix(suffix) for s in sources}
    counts: dict[Path, int] = defaultdict(int)
    for p in plain.values():
        counts[p] += 1
    return {s: p if counts[p] == 1 else Path(s).relative_to(root).with_name(Path(s).name + suffix)
            for s, p in plain.items()}


def axis_box(quad: Sequence[Sequence[float]]) -> tuple[int, int, int, int]:
    """``x0 y0 x1 y1`` (integer pixels) around a quadrilateral."""
    xs, ys = [p[0] for p in quad], [p[1] for p in quad]
    return math.floor(min(xs)), math.floor(min(ys)), math.ceil(max(xs)), math.ceil(max(ys))


def hocr(source: str, pages: Sequence[dict[str, Any]]) -> str:
    """An hOCR 1.2 document: ``ocr_page`` > ``ocr_line`` > ``ocrx_word`` with boxes and confidences.

    Words are the line's space-separated pieces, boxed in proportion to their characters (lines carry
    no per-character boxes); a Chinese line without spaces is one word.
    """
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">',
        '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="zh" lang="zh">',
        "<head>",
        f"<title>{escape(Path(source).name)}</title>",
        '<meta http-equiv="Content-Type" content="text/html; charset=utf-8" />',
        '<meta name="ocr-system" content="crnn-ocr" />',
        '<meta name="ocr-capabilities" content="ocr_page ocr_line ocrx_word" />',
        "</head>",
        "<body>",
    ]
    for rec in pages:
        p = rec["page"]
        title = f'image "{source}"; bbox 0 0 {rec["width"]} {rec["height"]}; ppageno {p - 1}'
        out.append(f'<div class="ocr_page" id="page_{p}" title="{escape(title)}">')
        for i, line in enumerate(rec["lines"], 1):
            x0, y0, x1, y1 = axis_box(line["box"])
            conf = round(100 * line["confidence"])
            out.append(f'<span class="ocr_line" id="line_{p}_{i}" title="bbox {x0} {y0} {x1} {y1}; x_wconf {conf}">')
            for j, (word, a, b) in enumerate(word_spans(line["text"]), 1):
                n = max(len(line["text"]), 1)
                wx0, wx1 = x0 + round((x1 - x0) * a / n), x0 + round((x1 - x0) * b / n)
                out.append(f'<span class="ocrx_word" id="word_{p}_{i}_{j}" '
                           f'title="bbox {wx0} {y0} {wx1} {y1}; x_wconf {conf}">{escape(word)}</span>')
            out.append("</span>")
        out.append("</div>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def word_spans(text: str) -> list[tuple[str, int, int]]:
    """``(word, start, end)`` character ranges of the space-separated words of a line."""
    spans, i = [], 0
    for word in text.split():
        start = text.index(word, i)
        i = start + len(word)
        spans.append((word, start, i))
    return spans


# ----------------------------------------------------------------------------------------- searchable PDF


def _to_unicode_cmap() -> bytes:
    """CID = UTF-16 code unit (BMP): one ``bfrange`` per high byte maps every CID to itself."""
    ranges = [f"<{h:02X}00> <{h:02X}FF> <{h:02X}00>" for h in range(256) if h not in range(0xD8, 0xE0)]
    blocks = [ranges[k:k + 100] for k in range(0, len(ranges), 100)]
    body = "".join(f"{len(b)} beginbfrange\n" + "\n".join(b) + "\nendbfrange\n" for b in blocks)
    return ("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
            "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
            "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n" + body +
            "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n").encode("ascii")


def _cids(text: str) -> str:
    """A line as big-endian 2-byte CIDs (hex); characters beyond the BMP become U+FFFD."""
    return "".join(f"{ord(c) if ord(c) < 0x10000 and not 0xD800 <= ord(c) < 0xE000 else 0xFFFD:04X}" for c in text)


def _text_ops(lines: Sequence[dict[str, Any]], height_px: int, scale: float) -> list[str]:
    """Invisible (render mode 3) text, each line stretched over its box along the box's top edge angle."""
    ops = ["BT", "3 Tr"]
    for line in lines:
        text = line["text"]
        (x0, y0), (x1, y1), _, (x3, y3) = line["box"]
        length = math.hypot(x1 - x0, y1 - y0)
        tall = math.hypot(x3 - x0, y3 - y0)
        if not text or length <= 0 or tall <= 0:
            continue
        size = tall * scale
        stretch = 100.0 * length * scale / (len(text) * size)
        angle = math.atan2(-(y1 - y0), x1 - x0)  # PDF y grows upwards
        c, s = math.cos(angle), math.sin(angle)
        ox, oy = x3 * scale, (height_px - y3) * scale + 0.2 * size * c  # baseline a little above the bottom
        ox -= 0.2 * size * s
        ops += [f"/F1 {size:.2f} Tf", f"{stretch:.2f} Tz",
                f"{c:.5f} {s:.5f} {-s:.5f} {c:.5f} {ox:.2f} {oy:.2f} Tm", f"<{_cids(text)}> Tj"]
    ops.append("ET")
    return ops


def searchable_pdf(pages: Iterable[tuple[np.ndarray, dict[str, Any]]], dpi: int = DEFAULT_DPI) -> bytes:
    """A PDF of gray page images, each with its lines as invisible, selectable and searchable text.

    Pages are compressed as they come, so only one page's pixels are held at a time.

    The text uses a non-embedded CID font whose codes are the characters' UTF-16 units, with a ToUnicode
    map, so viewers copy and search Chinese and English alike without any font file.
    """
    objs: list[bytes] = []

    def add(body: bytes) -> int:
        objs.append(body)
        return len(objs)

    def stream(head: str, data: bytes) -> bytes:
        return f"<< {head} /Length {len(data)} >>\nstream\n".encode("ascii") + data + b"\nendstream"

    catalog = add(b"")  # filled in at the end
    tree = add(b"")
    cmap = add(stream("/Filter /FlateDecode", zlib.compress(_to_unicode_cmap())))
    descriptor = add(b"<< /Type /FontDescriptor /FontName /GlyphLessFont /Flags 5 /FontBBox [0 -200 1000 800] "
                     b"/ItalicAngle 0 /Ascent 800 /Descent -200 /CapHeight 800 /StemV 80 >>")
    cid_font = add(f"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /GlyphLessFont /CIDSystemInfo << /Registry "
                   f"(Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor {descriptor} 0 R /DW 1000 "
                   f"/CIDToGIDMap /Identity >>".encode("ascii"))
    font = add(f"<< /Type /Font /Subtype /Type0 /BaseFont /GlyphLessFont /Encoding /Identity-H "
               f"/DescendantFonts [{cid_font} 0 R] /ToUnicode {cmap} 0 R >>".encode("ascii"))
    kids = []
    scale = 72.0 / dpi
    for gray, rec in pages:
        h, w = gray.shape[:2]
        image = add(stream(f"/Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceGray "
                           "/BitsPerComponent 8 /Filter /FlateDecode",
                           zlib.compress(np.ascontiguousarray(gray, dtype=np.uint8).tobytes(), 6)))
        wpt, hpt = w * scale, h * scale
        ops = ["q", f"{wpt:.2f} 0 0 {hpt:.2f} 0 0 cm", "/Im0 Do", "Q", *_text_ops(rec["lines"], h, scale)]
        content = add(stream("/Filter /FlateDecode", zlib.compress("\n".join(ops).encode("ascii"))))
        kids.append(add(f"<< /Type /Page /Parent {tree} 0 R /MediaBox [0 0 {wpt:.2f} {hpt:.2f}] "
                        f"/Resources << /Font << /F1 {font} 0 R >> /XObject << /Im0 {image} 0 R >> >> "
                        f"/Contents {content} 0 R >>".encode("ascii")))
    objs[catalog - 1] = f"<< /Type /Catalog /Pages {tree} 0 R >>".encode("ascii")
    objs[tree - 1] = (f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>"
                      .encode("ascii"))
    out = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode("ascii") + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode("ascii")
    out += b"".join(f"{o:010d} 00000 n \n".encode("ascii") for o in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root {catalog} 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode("ascii")
    return bytes(out)


def export_documents(records: Iterable[dict[str, Any]], folder: Path, fmt: str, dpi: int = DEFAULT_DPI,
                     ) -> tuple[int, list[str]]:
    """Write one ``fmt`` file per complete source under ``folder``; returns the count and skipped sources.

    Each file is written to a temporary name and renamed, so a killed export leaves no half file.
    """
    if fmt not in FORMATS:
        raise ValueError(f"export format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    docs, failed = complete_documents(records)
    names = output_names(list(docs), FORMATS[fmt])
    for source, pages in docs.items():
        target = folder / names[source]
        target.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "hocr":
            data = hocr(source, pages).encode("utf-8")
        else:
            data = searchable_pdf(((read_page(source, r["page"], dpi), r) for r in pages), dpi)
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(target)
    return len(docs), failed


def parquet_schema() -> Any:
    """The Parquet schema of the records: fixed, so files from different runs concatenate."""
    import pyarrow as pa

    line = pa.struct([("text", pa.string()), ("confidence", pa.float64()),
                      ("box", pa.list_(pa.list_(pa.float64(), 2), 4)), ("det_score", pa.float64()),
                      ("vertical", pa.bool_()), ("rotated_180", pa.bool_())])
    timings = pa.struct([(k, pa.float64()) for k in ("load_ms", "detect_ms", "recognize_ms", "cpu_ms")])
    return pa.schema([("source", pa.string()), ("page", pa.int32()), ("width", pa.int32()),
                      ("height", pa.int32()), ("lines", pa.list_(line)), ("timings", timings),
                      ("error", pa.string())])


def write_parquet(records: Iterable[dict[str, Any]], path: Path) -> int:
    """All records as one Parquet table (needs ``pyarrow``, which the ``ray`` extra brings); returns rows.

    Missing fields are nulls: ``lines`` and ``timings`` on error rows, ``error`` on the others.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema()
    names = [f.name for f in schema]
    line_keys = [f.name for f in schema.field("lines").type.value_type]
    rows = []
    for r in records:
        row = {k: r.get(k) for k in names}
        if row["lines"] is not None:
            row["lines"] = [{k: ln.get(k) for k in line_keys} for ln in row["lines"]]
        rows.append(row)
    table = pa.Table.from_pylist(rows, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return table.num_rows
