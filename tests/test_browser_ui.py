"""The web UI in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

A uvicorn server runs in a thread on a free loopback port; the browser uploads a rendered line, and the
page must show exactly the recogniser's text, draw its box, render HTML-looking text as text, ask for the
API key on a 401, and show API errors. Screenshots are saved in the test's tmp dir.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import render_line
from PIL import Image

from crnn_ocr.engine.recognizer import Recognizer
from crnn_ocr.preprocess import load_gray
from crnn_ocr.service import Settings, create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>&amp;'


class FixedText:
    """A backend that 'recognises' one given string in every line (to feed the page hostile text)."""

    def __init__(self, inner: Recognizer, text: str) -> None:
        self.meta = inner.backend.meta
        self.labels = self.meta.charset.encode(text)

    def run(self, batch: np.ndarray) -> np.ndarray:
        n, frames = batch.shape[0], batch.shape[3] // 4
        probs = np.zeros((n, frames, self.meta.charset.num_classes), dtype=np.float32)
        probs[:, :, 0] = 1.0
        if frames <= 2 * len(self.labels):  # too narrow (the warm-up line): read nothing
            return probs
        for k, label in enumerate(self.labels):
            probs[:, 2 * k + 1, 0] = 0.0
            probs[:, 2 * k + 1, label] = 1.0
        return probs


@contextmanager
def served(app: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1 with a free port; yield its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not (server.started and server.servers):
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("Debian chromium is missing: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def rec(tiny_onnx: Path) -> Recognizer:
    return Recognizer(tiny_onnx, threads=1)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 820}, locale="zh-CN")
    p = ctx.new_page()
    p.set_default_timeout(20_000)
    yield p
    ctx.close()


def save_png(path: Path, text: str) -> Path:
    Image.fromarray(render_line(text, height=56, font_size=36)).save(path)
    return path


def test_upload_recognise_and_draw_box(page: Any, rec: Recognizer, tmp_path: Path) -> None:
    image = save_png(tmp_path / "invoice_line.png", "发票号码 No.20240501 合计 ¥1,288.00")
    (expected,) = rec([load_gray(image.read_bytes())])
    assert expected.text, "the tiny model must read something for this check to mean anything"
    with served(create_app(rec)) as url:
        page.goto(url + "/")
        run = page.locator("#run")
        assert "开始高精度识别" in run.inner_text()
        assert run.is_disabled()
        page.set_input_files("#file", str(image))
        run.click()
        page.wait_for_selector("#lines li .text")
        texts = page.locator("#lines li .text").all_inner_texts()
        assert texts == [expected.text]
        assert page.locator("#overlay polygon").count() == 1
        box = page.locator("#overlay polygon").bounding_box()
        img = page.locator("#preview").bounding_box()
        assert box and img and box["width"] > 0.9 * img["width"] and box["height"] > 0.9 * img["height"]
        assert "s" in page.locator("#stats").inner_text()
        assert page.locator("#dlTxt").is_enabled() and page.locator("#copy").is_enabled()
        page.screenshot(path=str(tmp_path / "ui_desktop.png"), full_page=True)
        page.locator("#lang").click()
        assert "Recognize" in run.inner_text() and texts == page.locator("#lines li .text").all_inner_texts()
        page.set_viewport_size({"width": 390, "height": 844})
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        page.screenshot(path=str(tmp_path / "ui_phone.png"), full_page=True)


def test_recognised_html_is_shown_as_text(page: Any, rec: Recognizer, tmp_path: Path) -> None:
    image = tmp_path / "wide.png"
    Image.fromarray(np.full((32, 1200), 255, dtype=np.uint8)).save(image)
    with served(create_app(Recognizer(FixedText(rec, XSS)))) as url:
        page.goto(url + "/")
        page.set_input_files("#file", str(image))
        page.locator("#run").click()
        page.wait_for_selector("#lines li .text")
        assert page.locator("#lines li .text").inner_text() == XSS
        page.wait_for_timeout(300)
        assert page.evaluate("window.__xss") is None
        assert page.locator("#lines img, #lines script").count() == 0
        page.screenshot(path=str(tmp_path / "ui_xss.png"))


def test_asks_for_api_key_once_and_shows_errors(page: Any, rec: Recognizer, tmp_path: Path) -> None:
    image = save_png(tmp_path / "line.png", "密钥 key")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a PNG")
    with served(create_app(rec, Settings(api_key="ui-secret"))) as url:
        page.goto(url + "/")
        page.set_input_files("#file", str(image))
        page.locator("#run").click()
        page.wait_for_selector("#keyDialog:not([hidden])")
        page.fill("#keyInput", "ui-secret")
        page.locator("#keyOk").click()
        page.wait_for_selector("#lines li")
        # the key is kept for the session: an error from a bad file comes without asking again
        page.set_input_files("#file", str(bad))
        page.locator("#run").click()
        page.wait_for_selector("#error:not([hidden])")
        assert "415" in page.locator("#error").inner_text()
        assert page.locator("#keyDialog").is_hidden()
        page.screenshot(path=str(tmp_path / "ui_error.png"))


def test_paste_an_image(page: Any, rec: Recognizer, tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(render_line("粘贴 paste")).save(buf, "PNG")
    with served(create_app(rec)) as url:
        page.goto(url + "/")
        page.evaluate("""(bytes) => {
            const file = new File([new Uint8Array(bytes)], "pasted.png", {type: "image/png"});
            const data = new DataTransfer();
            data.items.add(file);
            document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data}));
        }""", list(buf.getvalue()))
        assert page.locator("#run").is_enabled()
        assert "pasted.png" in page.locator("#fileName").inner_text()


def test_page_shows_one_box_per_detected_line(page: Any, rec: Recognizer, tmp_path: Path) -> None:
    from crnn_ocr.pipeline import OCR

    sheet = np.full((300, 760), 255, dtype=np.uint8)
    for k, text in enumerate(["增值税普通发票 Invoice", "开票日期 2024-05-01", "价税合计 ¥1,288.00"]):
        line = render_line(text, height=56, font_size=36)
        sheet[30 + 85 * k: 30 + 85 * k + line.shape[0], 30: 30 + line.shape[1]] = line
    image = tmp_path / "page.png"
    Image.fromarray(sheet).save(image)
    ocr = OCR(detector="classical", recognizer=rec, min_confidence=0.0)
    want = [ln.text for ln in ocr(load_gray(image.read_bytes()))]
    assert want
    with served(create_app(ocr)) as url:
        page.goto(url + "/")
        page.set_input_files("#file", str(image))
        page.locator("#run").click()
        page.wait_for_selector("#lines li .text")
        assert page.locator("#lines li .text").all_inner_texts() == want
        assert page.locator("#overlay polygon").count() == len(want)
        page.locator("#lines li").last.hover()
        assert page.locator("#overlay polygon.active").count() == 1
        page.screenshot(path=str(tmp_path / "ui_page.png"), full_page=True)


def test_character_choice_is_sent_with_the_image(page: Any, rec: Recognizer, tmp_path: Path) -> None:
    image = save_png(tmp_path / "amount.png", "合计 Total ¥1,288.00 发票")
    (free,) = rec([load_gray(image.read_bytes())])
    (digits,) = rec([load_gray(image.read_bytes())], alphabet="digits")
    assert free.text != digits.text, "the two readings must differ for this check to mean anything"
    with served(create_app(rec)) as url:
        page.goto(url + "/")
        page.set_input_files("#file", str(image))
        page.locator(".options summary").click()
        page.select_option("#optAlphabet", "digits")
        page.locator("#run").click()
        page.wait_for_selector("#lines li .text")
        assert page.locator("#lines li .text").all_inner_texts() == [digits.text]
        page.locator("#lang").click()
        assert page.locator("#optAlphabet option:checked").inner_text() == "Digits only"


class HalfSeen(FixedText):
    """``FixedText`` whose last character is only half seen, with a lexicon word's letter as runner-up."""

    def __init__(self, inner: Recognizer, text: str, runner_up: str) -> None:
        super().__init__(inner, text)
        self.runner_up = self.meta.charset.encode(runner_up)[0]

    def run(self, batch: np.ndarray) -> np.ndarray:
        probs = super().run(batch)
        t = 2 * len(self.labels) - 1
        if probs.shape[1] > 2 * len(self.labels):
            probs[:, t, self.labels[-1]], probs[:, t, self.runner_up], probs[:, t, 0] = 0.5, 0.3, 0.2
        return probs


def test_dictionary_correction_can_be_switched_off(page: Any, rec: Recognizer, tmp_path: Path) -> None:
    from crnn_ocr.lexicon import Lexicon

    image = save_png(tmp_path / "total.png", "Total")
    reader = Recognizer(HalfSeen(rec, "Totai", "l"), lexicon=Lexicon.from_words(["total"]))
    with served(create_app(reader)) as url:
        page.goto(url + "/")
        page.set_input_files("#file", str(image))
        page.locator("#run").click()
        page.wait_for_selector("#lines li .text")
        assert page.locator("#lines li .text").all_inner_texts() == ["Total"]
        page.locator(".options summary").click()
        page.locator("#optLexicon").uncheck()
        page.locator("#run").click()
        page.locator("#lines li .text", has_text="Totai").wait_for()  # the page's CSP forbids eval'd predicates
        assert page.locator("#lines li .text").all_inner_texts() == ["Totai"]
        page.locator("#lang").click()
        assert "dictionary" in page.locator("label:has(#optLexicon)").inner_text()
