"""Batch OCR: input expansion, page records, resuming after a kill, error records, 1 worker == 2 workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_onnx, render_line
from PIL import Image
from typer.testing import CliRunner

from crnn_ocr.batch import BatchConfig, PageJob, expand_inputs, page_count, read_page, run_batch
from crnn_ocr.batch.output import JsonlSink, cut_torn_tail, read_records
from crnn_ocr.batch.pages import without_timings
from crnn_ocr.batch.runner import split_cores
from crnn_ocr.cli import app

TEXTS = ["增值税专用发票 No.0012345", "Invoice Date 2024-05-01", "合计人民币 ¥88.00", "Thank you 谢谢"]


def make_page(k: int) -> np.ndarray:
    """A small gray page with three rendered lines (different per ``k``)."""
    page = np.full((220, 520), 245, np.uint8)
    for row in range(3):
        line = render_line(TEXTS[(k + row) % len(TEXTS)])[:, :480]
        h, w = line.shape
        y = 20 + row * 65
        page[y:y + h, 20:20 + w] = line
    return page


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_tiny_onnx(tmp_path_factory.mktemp("batch_model") / "tiny.onnx"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scans/: 4 PNGs (one in a sub-folder), a 2-page PDF, a 2-page TIFF, a text file that is not read."""
    root = tmp_path_factory.mktemp("scans")
    (root / "sub").mkdir()
    for k in range(4):
        Image.fromarray(make_page(k)).save(root / ("sub" if k == 3 else ".") / f"p{k}.png")
    pdf_pages = [Image.fromarray(make_page(k)).convert("RGB") for k in (1, 2)]
    pdf_pages[0].save(root / "doc.pdf", save_all=True, append_images=pdf_pages[1:], resolution=100)
    tif_pages = [Image.fromarray(make_page(k)) for k in (2, 3)]
    tif_pages[0].save(root / "scan.tiff", save_all=True, append_images=tif_pages[1:])
    (root / "notes.txt").write_text("not an image")
    return root


def job(model: str, **kw: object) -> PageJob:
    return PageJob(model=model, **{"min_confidence": 0.0, **kw})  # type: ignore[arg-type]  # a random model


def run(model: str, inputs: list, out: Path, **kw: object):
    return run_batch(BatchConfig(inputs, out, job(model), progress=False, **kw))  # type: ignore[arg-type]


def keys(records: list[dict]) -> list[tuple[str, int | None]]:
    return [(r["source"], r["page"]) for r in records]


def content(records: list[dict]) -> list[dict]:
    return sorted((without_timings(r) for r in records), key=lambda r: (r["source"], r["page"] or 0))


@pytest.fixture(scope="module")
def reference(model: str, corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Records of the whole corpus from one uninterrupted single-worker run."""
    out = tmp_path_factory.mktemp("ref") / "ref.jsonl"
    s = run(model, [corpus], out, workers=1)
    assert (s.files, s.pages, s.written, s.errors) == (6, 8, 8, 0)
    return read_records(out)


def test_expand_inputs_folders_globs_files(corpus: Path) -> None:
    everything = expand_inputs([corpus])
    assert [p.name for p in everything] == ["doc.pdf", "p0.png", "p1.png", "p2.png", "scan.tiff", "p3.png"]
    assert all(p.is_absolute() for p in everything)
    assert [p.name for p in expand_inputs([str(corpus / "*.png")])] == ["p0.png", "p1.png", "p2.png"]
    assert [p.name for p in expand_inputs([str(corpus / "**" / "p3.*")])] == ["p3.png"]
    # a named file is taken whatever its suffix; the same file twice counts once
    named = expand_inputs([corpus / "notes.txt", corpus / "p0.png", str(corpus / "p0.png")])
    assert [p.name for p in named] == ["notes.txt", "p0.png"]
    with pytest.raises(FileNotFoundError, match="no such file"):
        expand_inputs([corpus / "missing.png"])
    with pytest.raises(FileNotFoundError, match="match"):
        expand_inputs([str(corpus / "*.jpg")])


def test_pdf_and_tiff_pages_are_read_one_by_one(corpus: Path) -> None:
    assert page_count(corpus / "doc.pdf") == 2
    assert page_count(corpus / "scan.tiff") == 2
    assert page_count(corpus / "p0.png") == 1
    assert np.array_equal(read_page(corpus / "scan.tiff", 2), make_page(3))
    assert read_page(corpus / "doc.pdf", 2, dpi=100).shape == (220, 520)
    with pytest.raises(ValueError, match="pages"):
        read_page(corpus / "doc.pdf", 3)


def test_records_hold_lines_boxes_and_page_size(reference: list[dict], corpus: Path) -> None:
    by_key = {(Path(r["source"]).name, r["page"]): r for r in reference}
    assert set(by_key) == {("p0.png", 1), ("p1.png", 1), ("p2.png", 1), ("p3.png", 1), ("doc.pdf", 1),
                           ("doc.pdf", 2), ("scan.tiff", 1), ("scan.tiff", 2)}
    rec = by_key[("p0.png", 1)]
    assert rec["source"] == str(corpus / "p0.png")
    assert (rec["width"], rec["height"]) == (520, 220)
    assert set(rec["timings"]) == {"load_ms", "detect_ms", "recognize_ms", "cpu_ms"}
    for r in reference:
        for line in r["lines"]:
            assert line["text"] and 0.0 <= line["confidence"] <= 1.0
            assert len(line["box"]) == 4
    # the detector found lines on the PNG pages (the tiny untrained recogniser reads noise, but reads)
    assert sum(len(r["lines"]) for r in reference) >= 4


def test_two_workers_write_the_same_records_as_one(model: str, corpus: Path, tmp_path: Path,
                                                    reference: list[dict]) -> None:
    out = tmp_path / "two.jsonl"
    s = run(model, [corpus], out, workers=2)
    assert s.written == 8
    assert content(read_records(out)) == content(reference)
    ordered = tmp_path / "ordered.jsonl"
    run(model, [corpus], ordered, workers=2, ordered=True)
    assert keys(read_records(ordered)) == keys(reference)  # input order: files sorted, pages ascending


def test_resume_cuts_a_torn_line_and_writes_each_page_once(model: str, corpus: Path, tmp_path: Path,
                                                           reference: list[dict]) -> None:
    out = tmp_path / "out.jsonl"
    lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in reference]
    out.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2], encoding="utf-8")  # killed mid-write
    s = run(model, [corpus], out, workers=1)
    assert (s.skipped, s.written) == (3, 5)
    records = read_records(out)
    assert len(records) == 8 and len(set(keys(records))) == 8
    assert out.read_bytes().endswith(b"\n")
    assert content(records) == content(reference)
    again = run(model, [corpus], out)
    assert (again.skipped, again.written) == (8, 0)


def test_cut_torn_tail_keeps_whole_lines(tmp_path: Path) -> None:
    f = tmp_path / "x.jsonl"
    for data, kept in ((b"", b""), (b'{"a":1}\n', b'{"a":1}\n'), (b'{"a":1}\n{"b"', b'{"a":1}\n'),
                       (b'{"b"', b"")):
        f.write_bytes(data)
        assert cut_torn_tail(f) == len(data) - len(kept)
        assert f.read_bytes() == kept


def test_a_killed_run_resumes_with_every_page_exactly_once(model: str, tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    for k in range(40):
        Image.fromarray(make_page(k)).save(pages / f"page{k:02d}.png")
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "crnn_ocr", "batch", str(pages), "--out", str(out), "--model", model,
           "--workers", "1", "--threads", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_file() and out.stat().st_size > 0:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = len(read_records(out))
    assert 1 <= first < 40
    s = run(model, [pages], out, workers=1)
    assert s.skipped == first and s.written == 40 - first
    records = read_records(out)
    assert sorted(keys(records)) == sorted((str(p), 1) for p in pages.glob("*.png"))


def test_corrupt_files_are_recorded_and_the_run_goes_on(model: str, corpus: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (bad / "broken.pdf").write_bytes(b"%PDF-1.4 truncated")
    (bad / "empty.jpg").write_bytes(b"")
    out = tmp_path / "out.jsonl"
    s = run(model, [bad, corpus / "p0.png"], out, workers=1)
    assert (s.written, s.errors) == (4, 3)
    by_name = {Path(r["source"]).name: r for r in read_records(out)}
    assert by_name["broken.pdf"]["page"] is None and "PDF" in by_name["broken.pdf"]["error"]
    assert by_name["broken.png"]["page"] == 1 and "ImageDecodeError" in by_name["broken.png"]["error"]
    assert "error" in by_name["empty.jpg"]
    assert "error" not in by_name["p0.png"] and by_name["p0.png"]["lines"]
    # errors count as done on resume, unless asked to retry them (after fixing the file)
    assert run(model, [bad], out).written == 0
    Image.fromarray(make_page(0)).save(bad / "broken.png", format="PNG")
    s = run(model, [bad], out, retry_errors=True)
    assert (s.written, s.errors) == (3, 2)
    records = read_records(out)
    assert len(records) == 4 and len(set(keys(records))) == 4
    assert "error" not in {Path(r["source"]).name: r for r in records}["broken.png"]


def test_a_second_run_on_the_same_output_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with JsonlSink(out), pytest.raises(RuntimeError, match="another run"), JsonlSink(out):
        pass


@pytest.mark.parametrize(("workers", "threads", "cores", "want"), [
    (None, None, 8, (8, 1)),
    (None, 2, 8, (4, 2)),
    (None, 3, 2, (1, 3)),
    (2, None, 8, (2, 4)),
    (4, None, 2, (4, 1)),
    (3, 3, 2, (3, 3)),
])
def test_split_cores_never_oversubscribes_by_default(workers: int | None, threads: int | None, cores: int,
                                                     want: tuple[int, int]) -> None:
    assert split_cores(workers, threads, cores) == want


def test_cli_batch(model: str, corpus: Path, tmp_path: Path, reference: list[dict]) -> None:
    out = tmp_path / "cli.jsonl"
    res = CliRunner().invoke(app, ["batch", str(corpus / "*.png"), str(corpus / "doc.pdf"), "--out", str(out),
                                   "--model", model, "--workers", "1", "--no-progress", "--min-confidence", "0"])
    assert res.exit_code == 0, res.output
    assert "5 pages" in res.output and "5 written" in res.output
    want = [r for r in reference if Path(r["source"]).name in ("p0.png", "p1.png", "p2.png", "doc.pdf")]
    assert content(read_records(out)) == content(want)
    res = CliRunner().invoke(app, ["batch", str(corpus), "--out", str(out), "--engine", "spark"])
    assert res.exit_code == 2 and "engine" in res.output


def test_batch_modules_do_not_import_torch() -> None:
    code = ("import sys, crnn_ocr.batch, crnn_ocr.batch.local, crnn_ocr.batch.export, crnn_ocr.batch.ray_engine; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_page_job_builds_the_recogniser_with_or_without_the_lexicon(model: str) -> None:
    assert PageJob(model=model).build().min_confidence == 0.5
    assert job(model).build().min_confidence == 0.0
    assert job(model).build().recognizer.lexicon is not None
    assert job(model, lexicon=False).build().recognizer.lexicon is None
