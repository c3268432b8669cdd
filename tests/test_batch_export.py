"""hOCR and searchable PDF made from batch records: structure, boxes, extractable text, skipped failures."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image
from test_batch import make_page
from typer.testing import CliRunner

from crnn_ocr.batch.export import complete_documents, export_documents, hocr, output_names, word_spans
from crnn_ocr.batch.output import read_records
from crnn_ocr.cli import app

XHTML = "{http://www.w3.org/1999/xhtml}"


def record(source: str, page: int, lines: list[tuple[str, list[list[float]]]]) -> dict:
    return {"source": source, "page": page, "width": 520, "height": 220,
            "lines": [{"text": t, "confidence": 0.9, "box": b} for t, b in lines], "timings": {}}


BOX = [[20.0, 20.0], [400.0, 20.0], [400.0, 60.0], [20.0, 60.0]]
TILTED = [[20.0, 150.0], [300.0, 110.0], [306.0, 150.0], [26.0, 190.0]]


def test_complete_documents_and_names() -> None:
    recs = [record("/d/b.pdf", 2, []), record("/d/b.pdf", 1, []), record("/d/x/a.png", 1, []),
            {"source": "/d/c.png", "page": 1, "error": "bad"}, record("/d/c.png", 1, [])]
    docs, failed = complete_documents(recs)
    assert list(docs) == ["/d/b.pdf", "/d/x/a.png"] and failed == ["/d/c.png"]
    assert [r["page"] for r in docs["/d/b.pdf"]] == [1, 2]
    assert output_names(["/d/b.pdf", "/d/x/a.png"], ".pdf") == {"/d/b.pdf": Path("b.pdf"),
                                                               "/d/x/a.png": Path("x/a.pdf")}
    assert output_names(["/d/a.png", "/d/a.pdf"], ".pdf") == {"/d/a.png": Path("a.png.pdf"),
                                                              "/d/a.pdf": Path("a.pdf.pdf")}


def test_word_spans() -> None:
    assert word_spans("Invoice  No. 12") == [("Invoice", 0, 7), ("No.", 9, 12), ("12", 13, 15)]
    assert word_spans("合计人民币") == [("合计人民币", 0, 5)]


def test_hocr_pages_lines_words() -> None:
    doc = hocr("/d/b.pdf", [record("/d/b.pdf", 1, [("Total 12.50", BOX)]),
                            record("/d/b.pdf", 2, [("合计 <&>", TILTED)])])
    root = ET.fromstring(doc.encode("utf-8"))
    pages = [e for e in root.iter(f"{XHTML}div") if e.get("class") == "ocr_page"]
    assert [p.get("title") for p in pages] == ['image "/d/b.pdf"; bbox 0 0 520 220; ppageno 0',
                                              'image "/d/b.pdf"; bbox 0 0 520 220; ppageno 1']
    words = [e for e in root.iter(f"{XHTML}span") if e.get("class") == "ocrx_word"]
    assert [w.text for w in words] == ["Total", "12.50", "合计", "<&>"]
    assert words[0].get("title") == "bbox 20 20 193 60; x_wconf 90"
    line2 = [e for e in root.iter(f"{XHTML}span") if e.get("class") == "ocr_line"][1]
    assert line2.get("title").startswith("bbox 20 110 306 190;")


def test_searchable_pdf_has_the_page_image_and_the_text(tmp_path: Path) -> None:
    src = tmp_path / "scan.png"
    Image.fromarray(make_page(0)).save(src)
    recs = [record(str(src), 1, [("Invoice No. 0012345", BOX), ("合计人民币 ¥88.00", TILTED)])]
    n, failed = export_documents(recs, tmp_path / "out", "pdf", dpi=144)
    assert (n, failed) == (1, [])
    pdf = pdfium.PdfDocument(str(tmp_path / "out" / "scan.pdf"))
    page = pdf[0]
    assert page.get_size() == pytest.approx((260.0, 110.0))  # 520 x 220 px at 144 dpi
    text = page.get_textpage().get_text_range()
    assert [t.strip() for t in text.splitlines()] == ["Invoice No. 0012345", "合计人民币 ¥88.00"]
    left, bottom, _, _ = page.get_textpage().get_charbox(0)
    assert left == pytest.approx(10.0, abs=1.5)  # x 20 px (+ a side bearing); baseline just above the bottom
    assert 110 - 60 / 2 < bottom < 110 - 20 / 2
    gray = page.render(scale=2, grayscale=True).to_numpy()
    assert gray.shape[:2] == (220, 520) and gray.min() < 100  # the page image is there, the text is not drawn
    assert abs(gray.astype(float).mean() - make_page(0).astype(float).mean()) < 3


def test_cli_writes_hocr_and_pdf_beside_the_jsonl(tmp_path: Path) -> None:
    from conftest import make_tiny_onnx

    pages = tmp_path / "pages"
    pages.mkdir()
    for k in range(2):
        Image.fromarray(make_page(k)).save(pages / f"p{k}.png")
    (pages / "bad.png").write_bytes(b"junk")
    model = make_tiny_onnx(tmp_path / "tiny.onnx")
    out = tmp_path / "r.jsonl"
    res = CliRunner().invoke(app, ["batch", str(pages), "--out", str(out), "--model", str(model), "--workers", "1",
                                   "--no-progress", "--hocr", str(tmp_path / "hocr"), "--pdf", str(tmp_path / "pdf")])
    assert res.exit_code == 0, res.output
    assert "1 with errors skipped" in res.output
    assert sorted(p.name for p in (tmp_path / "hocr").iterdir()) == ["p0.hocr", "p1.hocr"]
    assert sorted(p.name for p in (tmp_path / "pdf").iterdir()) == ["p0.pdf", "p1.pdf"]
    by_name = {Path(r["source"]).name: r for r in read_records(out)}
    text = pdfium.PdfDocument(str(tmp_path / "pdf" / "p0.pdf"))[0].get_textpage().get_text_range()
    # pdfium joins lines side by side into one text line: compare the characters in order
    assert "".join(text.split()) == "".join("".join(ln["text"].split()) for ln in by_name["p0.png"]["lines"])


def test_parquet_holds_every_record_with_a_fixed_schema(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed (the ray extra brings it)")
    from crnn_ocr.batch.export import write_parquet

    recs = [record("/d/a.png", 1, [("合计 12.50", BOX)]), {"source": "/d/b.pdf", "page": None, "error": "bad"}]
    recs[0]["lines"][0]["vertical"] = True
    recs[0]["timings"] = {"load_ms": 1.5, "detect_ms": 2.0, "recognize_ms": 3.0, "cpu_ms": 6.5}
    assert write_parquet(recs, tmp_path / "r.parquet") == 2
    rows = pq.read_table(tmp_path / "r.parquet").to_pylist()
    assert rows[0]["lines"] == [{"text": "合计 12.50", "confidence": 0.9, "box": BOX, "det_score": None,
                                 "vertical": True, "rotated_180": None}]
    assert rows[0]["timings"]["cpu_ms"] == 6.5 and rows[0]["error"] is None
    assert rows[1] == {"source": "/d/b.pdf", "page": None, "width": None, "height": None, "lines": None,
                       "timings": None, "error": "bad"}
