"""REST API: every endpoint, every bad-input class, options, API key rules, CORS, headers, error bodies."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import render_line
from fastapi.testclient import TestClient
from PIL import Image

from crnn_ocr.engine.recognizer import Recognizer
from crnn_ocr.preprocess import load_gray
from crnn_ocr.service import Settings, create_app
from crnn_ocr.service.app import CSP, static_dir

KEY = "s3cret-key"


def encode(img: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png_with_header(w: int, h: int, idat: bytes = b"") -> bytes:
    """A PNG whose header claims ``w x h`` pixels, whatever its data (bombs, zero sizes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def line_png() -> bytes:
    return encode(Image.fromarray(render_line("合计 Total ¥128.50")))


@pytest.fixture(scope="module")
def rec(tiny_onnx: Path) -> Recognizer:
    return Recognizer(tiny_onnx, threads=1)


@pytest.fixture(scope="module")
def client(rec: Recognizer) -> Iterator[TestClient]:
    with TestClient(create_app(rec, Settings(max_bytes=2_000_000, max_pixels=4_000_000))) as c:
        yield c


def expected_text(rec: Recognizer, data: bytes) -> list[str]:
    (res,) = rec([load_gray(data)])
    return [res.text] if res.text else []


# ------------------------------------------------------------------------------------------- endpoints


def test_ocr_contract(client: TestClient, rec: Recognizer, line_png: bytes) -> None:
    r = client.post("/api/ocr", files={"image": ("line.png", line_png, "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["text"] == expected_text(rec, line_png)
    assert isinstance(body["time"], float) and body["time"] >= 0
    assert body["model"] == "tiny_test"
    h, w = load_gray(line_png).shape
    assert (body["width"], body["height"]) == (w, h)
    assert body["request_id"] == r.headers["x-request-id"]
    (line,) = body["lines"]
    assert line["text"] == body["text"][0]
    assert line["box"] == [[0, 0], [w, 0], [w, h], [0, h]]
    assert 0 <= line["confidence"] <= 1
    assert "chars" not in line


def test_raw_image_body(client: TestClient, rec: Recognizer, line_png: bytes) -> None:
    r = client.post("/api/ocr", content=line_png, headers={"Content-Type": "image/png"})
    assert r.status_code == 200
    assert r.json()["text"] == expected_text(rec, line_png)


def test_options_query_and_form(client: TestClient, line_png: bytes) -> None:
    files = {"image": ("line.png", line_png, "image/png")}
    with_chars = client.post("/api/ocr?chars=1", files=files).json()
    assert with_chars["lines"][0]["chars"] and {"char", "confidence"} <= set(with_chars["lines"][0]["chars"][0])
    assert client.post("/api/ocr", files=files, data={"chars": "true"}).json()["lines"][0]["chars"]
    assert client.post("/api/ocr?min_confidence=1", files=files).json()["text"] == []
    assert client.post("/api/ocr", files=files, data={"min_confidence": "1"}).json()["lines"] == []
    for q in ("preprocess=clahe,adaptive_threshold", "preprocess=none", "det=none"):
        assert client.post(f"/api/ocr?{q}", files=files).status_code == 200, q


def test_alphabet_option_restricts_what_is_read(client: TestClient, rec: Recognizer, line_png: bytes) -> None:
    files = {"image": ("line.png", line_png, "image/png")}
    (want,) = rec([load_gray(line_png)], alphabet="digits")
    for r in (client.post("/api/ocr?alphabet=digits", files=files),
              client.post("/api/ocr", files=files, data={"alphabet": "digits"})):
        assert r.status_code == 200, r.text
        assert r.json()["text"] == ([want.text] if want.text else [])
    literal = client.post("/api/ocr", files=files, data={"alphabet": "合计Total"}).json()
    assert all(set(t) <= set("合计Total ") for t in literal["text"])
    bad = client.post("/api/ocr", files=files, data={"alphabet": "12\U0001d11e"})
    assert bad.status_code == 400 and "alphabet" in bad.json()["error"] and "charset lacks" in bad.json()["error"]
    assert client.post("/api/ocr?alphabet=", files=files).status_code == 400


def test_alphabet_applies_to_every_line_of_a_page(rec: Recognizer) -> None:
    from crnn_ocr.pipeline import OCR

    page = np.full((200, 700), 255, dtype=np.uint8)
    for k, text in enumerate(["发票号码 12345678", "合计 ¥ 1,288.00"]):
        line = render_line(text)
        page[30 + 80 * k: 30 + 80 * k + line.shape[0], 30: 30 + line.shape[1]] = line
    data = encode(Image.fromarray(page))
    ocr = OCR(detector="classical", recognizer=rec, min_confidence=0.0)
    want = ocr(load_gray(data), alphabet="0123456789.,")
    with TestClient(create_app(ocr)) as c:
        body = c.post("/api/ocr?alphabet=0123456789.,", files={"image": ("p.png", data, "image/png")}).json()
    assert body["text"] == [ln.text for ln in want]
    assert all(set(t) <= set("0123456789., ") for t in body["text"])


@pytest.mark.parametrize("query", ["det=page", "min_confidence=2", "min_confidence=abc", "min_confidence=nan",
                                   "preprocess=sharpen", "preprocess=,clahe", "preprocess=clahe,%C2%B9", "chars=maybe"])
def test_bad_options(client: TestClient, line_png: bytes, query: str) -> None:
    r = client.post(f"/api/ocr?{query}", files={"image": ("a.png", line_png, "image/png")})
    assert r.status_code == 400
    assert "error" in r.json()


@pytest.mark.parametrize("form", [{"chars": "{}"}, {"preprocess": "blur"}, {"min_confidence": "-1"},
                                  {"det": "page"}])
def test_bad_form_options(client: TestClient, line_png: bytes, form: dict[str, str]) -> None:
    r = client.post("/api/ocr", files={"image": ("a.png", line_png, "image/png")}, data=form)
    assert r.status_code == 400 and "invalid option" in r.json()["error"]


def test_health_ready_metrics_docs(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "model": "tiny_test"}
    assert client.get("/ready").json() == {"status": "ready", "model": "tiny_test"}
    client.post("/api/ocr")
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    for name in ("crnn_ocr_requests_total", "crnn_ocr_request_seconds_bucket", "crnn_ocr_in_flight",
                 "crnn_ocr_queue_depth", 'crnn_ocr_errors_total{type="missing_image"}', "crnn_ocr_batch_lines"):
        assert name in metrics.text
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/api/ocr"]["post"]["requestBody"]["content"]
    assert body["multipart/form-data"]["schema"]["required"] == ["image"]


def test_not_ready_without_startup(rec: Recognizer, line_png: bytes) -> None:
    c = TestClient(create_app(rec))  # no context manager: the lifespan (warm-up) never ran
    assert c.get("/health").status_code == 200
    assert c.get("/ready").status_code == 503
    r = c.post("/api/ocr", files={"image": ("a.png", line_png, "image/png")})
    assert r.status_code == 503 and "Retry-After" in r.headers


def test_index_page_and_headers(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "开始高精度识别" in r.text
    assert r.headers["content-security-policy"] == CSP
    assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert client.head("/").status_code == 200
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200


def test_ui_never_renders_text_as_html() -> None:
    """Recognised text reaches the page through textContent only: no HTML sinks in the UI code."""
    js = (static_dir() / "app.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in js, sink
    assert "text.textContent = String(line.text)" in js
    html = (static_dir() / "index.html").read_text(encoding="utf-8")
    assert "<script>" not in html and "onclick" not in html.lower() and "style=" not in html


def test_html_text_is_returned_verbatim_as_json(client: TestClient) -> None:
    r = client.post("/api/ocr", files={"image": ("<script>alert(1)</script>.png", b"nope", "image/png")})
    assert r.headers["content-type"] == "application/json"
    assert "<script>" not in r.json()["error"]


def test_unknown_route_is_json(client: TestClient) -> None:
    r = client.get("/nope")
    assert r.status_code == 404 and "error" in r.json()
    assert client.get("/api/ocr").status_code == 405


def test_request_id_is_echoed(client: TestClient) -> None:
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    assert client.get("/health", headers={"X-Request-ID": "bad id\n"}).headers["x-request-id"] != "bad id\n"


# ----------------------------------------------------------------------------------------- bad input


def _gif_animated() -> bytes:
    frames = [Image.fromarray(render_line(t)).convert("P") for t in ("第一帧 one", "第二帧 two")]
    frames[1] = frames[1].resize(frames[0].size)
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _cmyk_jpeg() -> bytes:
    return encode(Image.fromarray(render_line("CMYK 印刷")).convert("CMYK"), "JPEG")


def _png16() -> bytes:
    return encode(Image.fromarray(render_line("16 bit 深度").astype(np.uint16) * 257), "PNG")


def _exif_rotated() -> bytes:
    img = Image.fromarray(render_line("EXIF 旋转"))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    return encode(img.convert("RGB"), "JPEG", exif=exif.tobytes())


def _truncated(line_png: bytes) -> bytes:
    return line_png[: len(line_png) // 2]


@pytest.mark.parametrize(("name", "make", "status"), [
    ("empty file", lambda p: b"", 400),
    ("text file", lambda p: b"hello, this is not an image", 415),
    ("random bytes with a PNG signature", lambda p: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, 415),
    ("truncated PNG", _truncated, 400),
    ("zero-size PNG header", lambda p: png_with_header(0, 32), 415),
    ("decompression bomb", lambda p: png_with_header(100_000, 100_000, zlib.compress(b"\0" * 1000)), 413),
    ("over the pixel limit", lambda p: png_with_header(4000, 1001, zlib.compress(b"\0" * 1000)), 413),
    ("header fine, data corrupt", lambda p: png_with_header(64, 32, b"garbage"), 400),
])
def test_bad_images(client: TestClient, line_png: bytes, name: str, make: object, status: int) -> None:
    r = client.post("/api/ocr", files={"image": ("x.png", make(line_png), "image/png")})  # type: ignore[operator]
    assert r.status_code == status, (name, r.text)
    body = r.json()
    assert body["error"] and "Traceback" not in body["error"] and "/" not in body["error"].split("(")[0]


@pytest.mark.parametrize(("name", "make", "shape"), [
    ("1x1", lambda: encode(Image.new("L", (1, 1), 255)), (1, 1)),
    ("animated GIF (first frame)", _gif_animated, None),
    ("CMYK JPEG", _cmyk_jpeg, None),
    ("16-bit PNG", _png16, None),
    ("very wide", lambda: encode(Image.fromarray(np.tile(render_line("很长的一行 long line "), (1, 12)))), None),
    ("wide and flat", lambda: encode(Image.new("L", (6_000, 12), 255)), (12, 6_000)),
    ("very tall", lambda: encode(Image.new("L", (2, 20_000), 255)), (20_000, 2)),
    ("RGBA PNG", lambda: encode(Image.fromarray(render_line("透明 alpha")).convert("RGBA")), None),
])
def test_odd_but_valid_images(client: TestClient, rec: Recognizer, name: str, make: object,
                              shape: tuple[int, int] | None) -> None:
    data = make()  # type: ignore[operator]
    r = client.post("/api/ocr", files={"image": ("x", data, "application/octet-stream")})
    assert r.status_code == 200, (name, r.text)
    body = r.json()
    if shape is not None:
        assert (body["height"], body["width"]) == shape
    assert body["text"] == expected_text(rec, data), name


def test_exif_orientation_applied(client: TestClient) -> None:
    data = _exif_rotated()
    stored = Image.open(io.BytesIO(data)).size
    body = client.post("/api/ocr", files={"image": ("r.jpg", data, "image/jpeg")}).json()
    assert (body["width"], body["height"]) == (stored[1], stored[0])  # rotated by 90 degrees


def test_missing_field_and_wrong_bodies(client: TestClient, line_png: bytes) -> None:
    no_body = client.post("/api/ocr")
    assert no_body.status_code == 400 and "image" in no_body.json()["error"]
    wrong_field = client.post("/api/ocr", files={"file": ("a.png", line_png, "image/png")})
    assert wrong_field.status_code == 400
    only_fields = client.post("/api/ocr", data={"det": "none"}, files={"other": ("x", b"1")})
    assert only_fields.status_code == 400
    assert client.post("/api/ocr", content=b"{}", headers={"Content-Type": "application/json"}).status_code == 415
    broken = client.post("/api/ocr", content=b"--xx\r\nnot a part", headers={"Content-Type": "multipart/form-data"})
    assert broken.status_code == 400
    two = [("image", ("a.png", line_png, "image/png")), ("image", ("b.png", line_png, "image/png"))]
    assert client.post("/api/ocr", files=two).status_code == 400


def test_too_large_bytes(rec: Recognizer, line_png: bytes) -> None:
    with TestClient(create_app(rec, Settings(max_bytes=len(line_png) - 1))) as c:
        r = c.post("/api/ocr", files={"image": ("a.png", line_png, "image/png")})
        assert r.status_code == 413 and "limit" in r.json()["error"]
        assert c.post("/api/ocr", content=line_png, headers={"Content-Type": "image/png"}).status_code == 413
        huge = b"\0" * (len(line_png) + 200_000)
        assert c.post("/api/ocr", content=huge, headers={"Content-Type": "image/png"}).status_code == 413
    with TestClient(create_app(rec, Settings(max_bytes=len(line_png)))) as c:
        assert c.post("/api/ocr", files={"image": ("a.png", line_png, "image/png")}).status_code == 200


def test_default_limits() -> None:
    s = Settings()
    assert s.max_bytes == 20 * 1024 * 1024 and s.port == 5000 and s.host == "127.0.0.1"
    assert s.api_key is None and s.cors_origins == ()


# ------------------------------------------------------------------------------------------- API key


@pytest.fixture(scope="module")
def locked(rec: Recognizer) -> Iterator[TestClient]:
    with TestClient(create_app(rec, Settings(api_key=KEY))) as c:
        yield c


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401),
    ({"Authorization": "Bearer wrong"}, 401),
    ({"Authorization": f"Basic {KEY}"}, 401),
    ({"X-API-Key": KEY[:-1]}, 401),
    ({"X-API-Key": KEY + "x"}, 401),
    ({"Authorization": f"Bearer {KEY}"}, 200),
    ({"Authorization": f"bearer  {KEY}"}, 200),
    ({"X-API-Key": KEY}, 200),
])
def test_api_key_rules(locked: TestClient, line_png: bytes, headers: dict[str, str], status: int) -> None:
    r = locked.post("/api/ocr", files={"image": ("a.png", line_png, "image/png")}, headers=headers)
    assert r.status_code == status
    if status == 401:
        assert r.headers["www-authenticate"] == "Bearer" and "API key" in r.json()["error"]


def test_api_key_leaves_health_and_ui_open(locked: TestClient) -> None:
    for path in ("/health", "/ready", "/", "/static/app.js", "/metrics"):
        assert locked.get(path).status_code == 200, path


def test_api_key_checked_before_reading_the_body(locked: TestClient) -> None:
    assert locked.post("/api/ocr", content=b"\0" * 10, headers={"Content-Type": "image/png"}).status_code == 401


def test_settings_from_env() -> None:
    s = Settings.from_env({"CRNN_OCR_API_KEY": "k", "CRNN_OCR_MAX_BYTES": "123", "CRNN_OCR_CORS_ORIGINS": "a, b"})
    assert (s.api_key, s.max_bytes, s.cors_origins) == ("k", 123, ("a", "b"))
    assert Settings.from_env({"CRNN_OCR_API_KEY": "  "}).api_key is None
    with pytest.raises(ValueError, match="CRNN_OCR_MAX_BYTES"):
        Settings.from_env({"CRNN_OCR_MAX_BYTES": "lots"})
    with pytest.raises(ValueError, match="workers"):
        Settings(workers=0)


# ----------------------------------------------------------------------------------------------- CORS


def test_cors_off_by_default(client: TestClient) -> None:
    r = client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_when_configured(rec: Recognizer) -> None:
    with TestClient(create_app(rec, Settings(cors_origins=("https://app.example",)))) as c:
        ok = c.options("/api/ocr", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        other = c.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


# ------------------------------------------------------------------------------------------- failures


class _Broken:
    """A backend that fails after warm-up, as a model that runs out of memory would."""

    def __init__(self, inner: Recognizer) -> None:
        self.meta = inner.backend.meta
        self.inner = inner.backend
        self.calls = 0

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("/secret/path/model.onnx exploded")
        return self.inner.run(batch)


def test_internal_error_is_json_without_details(rec: Recognizer, line_png: bytes) -> None:
    app = create_app(Recognizer(_Broken(rec)))
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/api/ocr", files={"image": ("a.png", line_png, "image/png")})
        assert r.status_code == 500
        body = r.json()
        assert body["request_id"] == r.headers["x-request-id"]
        assert "secret" not in r.text and "Traceback" not in r.text
        assert c.get("/health").status_code == 200


# ------------------------------------------------------------------------------------------ detection


def test_page_with_detector_matches_the_pipeline(rec: Recognizer) -> None:
    from crnn_ocr.pipeline import OCR

    page = np.full((260, 900), 255, dtype=np.uint8)
    for k, text in enumerate(["增值税专用发票 Invoice", "购买方 名称 北京某某公司", "合计 ¥ 1,288.00"]):
        line = render_line(text)
        page[40 + 70 * k: 40 + 70 * k + line.shape[0], 40: 40 + line.shape[1]] = line
    data = encode(Image.fromarray(page))
    ocr = OCR(detector="classical", recognizer=rec, min_confidence=0.0)
    want = ocr(load_gray(data))
    assert want
    with TestClient(create_app(ocr)) as c:
        body = c.post("/api/ocr", files={"image": ("page.png", data, "image/png")}).json()
        assert body["text"] == [ln.text for ln in want]
        assert [ln["box"] for ln in body["lines"]] == [ln.to_dict()["box"] for ln in want]
        whole = c.post("/api/ocr?det=none", files={"image": ("page.png", data, "image/png")}).json()
        assert [ln["box"] for ln in whole["lines"]] in ([], [[[0, 0], [900, 0], [900, 260], [0, 260]]])


def test_structured_log_line_carries_request_id() -> None:
    import json
    import logging

    from crnn_ocr.service.logs import JsonFormatter, request_id_var

    token = request_id_var.set("rid-42")
    try:
        record = logging.LogRecord("crnn_ocr.service", logging.INFO, __file__, 1, "request", None, None)
        record.fields = {"status": 200, "path": "/api/ocr"}
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["request_id"] == "rid-42" and line["status"] == 200 and line["msg"] == "request"


def test_too_many_form_parts(client: TestClient, line_png: bytes) -> None:
    files = [("image", ("a.png", line_png, "image/png"))] + [(f"f{i}", (None, "x")) for i in range(40)]
    r = client.post("/api/ocr", files=files)
    assert r.status_code == 400 and "too many" in r.json()["error"]
