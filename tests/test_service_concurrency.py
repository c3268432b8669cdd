"""Concurrency: micro-batching, per-request results under parallel load, the bounded queue, shutdown."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import render_line
from fastapi.testclient import TestClient
from PIL import Image

from crnn_ocr.engine.recognizer import Recognizer
from crnn_ocr.preprocess import load_gray
from crnn_ocr.results import LineResult
from crnn_ocr.service import Settings, create_app
from crnn_ocr.service.batcher import MicroBatcher

TEXTS = ["发票号码 12345", "Total ¥88.00", "北京市海淀区", "Invoice No. A-7", "合计金额", "2024-05-01 10:30",
         "电话 010-8888", "Mixed 中英 text"]


def png(text: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(render_line(text)).save(buf, "PNG")
    return buf.getvalue()


class Recording:
    """A backend wrapper that records batch sizes and can hold a batch until released."""

    def __init__(self, inner: Recognizer) -> None:
        self.meta = inner.backend.meta
        self.inner = inner.backend
        self.sizes: list[int] = []
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.sizes.append(batch.shape[0])
        self.entered.set()
        self.hold.wait(10)
        return self.inner.run(batch)


@pytest.fixture(scope="module")
def rec(tiny_onnx: Path) -> Recognizer:
    return Recognizer(tiny_onnx, threads=1)


def test_parallel_clients_get_their_own_results(rec: Recognizer) -> None:
    images = [png(t) for t in TEXTS]
    expected = [r.text for r in (rec([load_gray(d)])[0] for d in images)]
    assert len(set(expected)) == len(expected)  # distinct, so a mix-up would show
    backend = Recording(rec)
    app = create_app(Recognizer(backend), Settings(batch_wait_ms=30, max_batch_lines=64))
    with TestClient(app) as c:
        backend.sizes.clear()

        def post(i: int) -> list[str]:
            r = c.post("/api/ocr", files={"image": (f"{i}.png", images[i % len(images)], "image/png")})
            assert r.status_code == 200, r.text
            return r.json()["text"]

        with ThreadPoolExecutor(16) as pool:
            got = list(pool.map(post, range(32)))
    assert got == [[expected[i % len(images)]] for i in range(32)]
    assert max(backend.sizes) > 1, f"requests were not batched together: {backend.sizes}"
    assert sum(backend.sizes) == 32


def test_batcher_splits_results_in_order() -> None:
    calls: list[int] = []

    def recognize(lines: list[np.ndarray], widths: list[float], alphabets: list[str | None],
                  lexicons: list[bool]) -> list[LineResult]:
        calls.append(len(lines))
        return [LineResult(f"{int(ln[0, 0])}{a or ''}{'' if x else '!'}", 1.0)
                for ln, a, x in zip(lines, alphabets, lexicons, strict=True)]

    async def main() -> list[list[str]]:
        with ThreadPoolExecutor(1) as pool:
            b = MicroBatcher(recognize, pool, slots=1, max_wait_s=0.05, max_lines=100)
            b.start()
            jobs = [b.submit([np.full((2, 2), i * 10 + k) for k in range(i % 3 + 1)], [2.0] * (i % 3 + 1),
                             "digits" if i % 2 else None, i % 3 != 1)
                    for i in range(6)]
            out = await asyncio.gather(*jobs)
            assert await b.submit([], []) == []
            await b.stop()
            return [[r.text for r in rs] for rs in out]

    got = asyncio.run(main())
    # one batch for all jobs, each line read with its own request's alphabet and lexicon choice
    assert got == [[f"{i * 10 + k}{'digits' if i % 2 else ''}{'!' if i % 3 == 1 else ''}" for k in range(i % 3 + 1)]
                   for i in range(6)]
    assert calls == [12]


def test_batcher_reports_errors_to_every_waiter() -> None:
    def recognize(lines: list[np.ndarray], widths: list[float], alphabets: list[str | None],
                  lexicons: list[bool]) -> list[LineResult]:
        raise RuntimeError("boom")

    async def main() -> list[BaseException | list[LineResult]]:
        with ThreadPoolExecutor(1) as pool:
            b = MicroBatcher(recognize, pool, max_wait_s=0.02)
            b.start()
            res = await asyncio.gather(*(b.submit([np.zeros((2, 2))], [2.0]) for _ in range(3)),
                                       return_exceptions=True)
            await b.stop()
            return res

    assert all(isinstance(r, RuntimeError) for r in asyncio.run(main()))


def test_full_queue_gets_fast_503(rec: Recognizer) -> None:
    backend = Recording(rec)
    app = create_app(Recognizer(backend), Settings(max_queue=1, retry_after_s=2))
    data = png("排队 queue")
    with TestClient(app) as c:
        backend.hold.clear()
        backend.entered.clear()
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(c.post, "/api/ocr", files={"image": ("a.png", data, "image/png")})
            assert backend.entered.wait(10)
            t0 = time.perf_counter()
            busy = c.post("/api/ocr", files={"image": ("b.png", data, "image/png")})
            elapsed = time.perf_counter() - t0
            backend.hold.set()
            assert first.result(10).status_code == 200
        assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
        assert "busy" in busy.json()["error"] and elapsed < 2
        assert 'crnn_ocr_errors_total{type="overloaded"} 1.0' in c.get("/metrics").text
        assert c.post("/api/ocr", files={"image": ("c.png", data, "image/png")}).status_code == 200


def test_graceful_shutdown_finishes_in_flight_request(rec: Recognizer) -> None:
    """What SIGTERM does to uvicorn (``should_exit``) lets a running request complete with 200."""
    import httpx
    import uvicorn

    backend = Recording(rec)
    server = uvicorn.Server(uvicorn.Config(create_app(Recognizer(backend)), host="127.0.0.1", port=0,
                                           log_level="warning", timeout_graceful_shutdown=10))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not (server.started and server.servers) and time.time() < deadline:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    backend.hold.clear()
    backend.entered.clear()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.post, f"http://127.0.0.1:{port}/api/ocr",
                              files={"image": ("a.png", png("关机 shutdown"), "image/png")}, timeout=20)
        assert backend.entered.wait(10)
        server.should_exit = True
        time.sleep(0.3)
        backend.hold.set()
        assert pending.result(20).status_code == 200
    thread.join(20)
    assert not thread.is_alive()


def test_service_does_not_import_torch() -> None:
    code = ("import sys, crnn_ocr.service, crnn_ocr.service.app, crnn_ocr.service.server, crnn_ocr.cli; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
