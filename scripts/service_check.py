"""Reliability checks of the OCR web service: load, memory and bad-input fuzzing (loopback only).

Each check either starts its own server (``--model PATH``, or the bundled model when omitted) on a free
127.0.0.1 port, or talks to one already running (``--url http://127.0.0.1:PORT``; ``--pid`` for memory).
Traffic never leaves the machine: any non-loopback URL is refused. Every run is bounded in time and
count, stops by itself and prints (and optionally writes, ``--json``) its figures.

    python scripts/service_check.py load   --model m.onnx --clients 50 --duration 120
    python scripts/service_check.py memory --model m.onnx --first 1000 --total 10000
    python scripts/service_check.py fuzz   --model m.onnx --cases 1200
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import numpy as np
from PIL import Image, ImageDraw, ImageFont

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MAX_DURATION_S = 600
MAX_CLIENTS = 200
WORDS = ["发票", "合计", "金额", "日期", "北京", "上海", "Invoice", "Total", "No.", "¥", "2024-05-01", "12:30",
         "电话", "地址", "Tax", "OCR", "识别", "收据", "ID", "0123456789"]


# ------------------------------------------------------------------------------------------- helpers


def loopback_url(url: str) -> str:
    """``url`` without a trailing slash, or SystemExit when it does not point at this machine."""
    host = urlparse(url).hostname or ""
    if host not in LOOPBACK:
        raise SystemExit(f"refusing to send traffic to {host!r}: only 127.0.0.1 / localhost are allowed")
    return url.rstrip("/")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    """Resident set size of a process in MiB (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@contextmanager
def server(args: argparse.Namespace) -> Iterator[tuple[str, int | None]]:
    """The server to test: ``--url`` as given, or a ``crnn-ocr serve`` child on a free loopback port."""
    if args.url:
        yield loopback_url(args.url), args.pid
        return
    port = free_port()
    cmd = [sys.executable, "-m", "crnn_ocr", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning"]
    if args.model:
        cmd += ["--model", args.model]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    if args.det:
        cmd += ["--det", args.det]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit("server failed to start:\n" + (proc.stderr.read().decode() if proc.stderr else ""))
            try:
                if httpx.get(url + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server not ready after 120 s")
            time.sleep(0.2)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        path = subprocess.run(["fc-match", "-f", "%{file}", "Noto Sans CJK SC"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
        if path:
            return ImageFont.truetype(path, size)
    except (OSError, subprocess.TimeoutExpired):
        pass
    return ImageFont.load_default(size)


def line_images(n: int, seed: int = 0) -> list[bytes]:
    """``n`` PNG text lines of 2-12 random words, 28 px text on 40 px lines, as uploads."""
    rng = random.Random(seed)
    font = _font(28)
    out = []
    for _ in range(n):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 12)))
        left, top, right, bottom = font.getbbox(text)
        img = Image.new("L", (right - left + 16, 40), 255)
        ImageDraw.Draw(img).text((8 - left, (40 - (bottom - top)) // 2 - top), text, fill=0, font=font)
        buf = io.BytesIO()
        img.save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``; NaN when empty."""
    return float(np.percentile(values, q)) if values else float("nan")


def report(name: str, figures: dict[str, Any], json_out: str | None) -> None:
    """Print the figures, and write them as JSON when asked."""
    print(json.dumps({"check": name, **figures}, indent=2, ensure_ascii=False))
    if json_out:
        Path(json_out).write_text(json.dumps({"check": name, **figures}, indent=2, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------------------------------- load


async def _load(url: str, images: list[bytes], clients: int, duration: float, timeout: float) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    stop_at = time.monotonic() + duration

    async def client_loop(k: int, http: httpx.AsyncClient) -> None:
        i = k
        while time.monotonic() < stop_at:
            data = images[i % len(images)]
            i += clients
            t0 = time.perf_counter()
            try:
                r = await http.post(url + "/api/ocr", files={"image": ("line.png", data, "image/png")})
                statuses[str(r.status_code)] += 1
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - t0)
            except httpx.HTTPError as e:
                statuses[type(e).__name__] += 1

    start = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
        await asyncio.gather(*(client_loop(k, http) for k in range(clients)))
    elapsed = time.perf_counter() - start
    total = sum(statuses.values())
    ok = statuses.get("200", 0)
    return {
        "clients": clients, "duration_s": round(elapsed, 1), "requests": total, "ok": ok,
        "throughput_rps": round(ok / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1), "p90_ms": round(percentile(latencies, 90) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1), "max_ms": round(max(latencies, default=0) * 1000, 1),
        "status_counts": dict(statuses),
        "5xx": sum(v for k, v in statuses.items() if k.startswith("5")),
        "unanswered": sum(v for k, v in statuses.items() if not k.isdigit()),
    }


def cmd_load(args: argparse.Namespace) -> int:
    """50 clients (by default) posting line images back to back for a fixed time."""
    clients = min(args.clients, MAX_CLIENTS)
    duration = min(args.duration, MAX_DURATION_S)
    images = line_images(64)
    with server(args) as (url, pid):
        before = rss_mib(pid) if pid else None
        figures = asyncio.run(_load(url, images, clients, duration, args.timeout))
        figures["server_rss_mib"] = {"before": round(before, 1) if before else None,
                                     "after": round(rss_mib(pid), 1) if pid else None}
        figures["health_after"] = httpx.get(url + "/health", timeout=10).json()
    report("load", figures, args.json)
    return 0 if figures["5xx"] == 0 and figures["unanswered"] == 0 else 1


# -------------------------------------------------------------------------------------------- memory


async def _requests(url: str, images: list[bytes], n: int, concurrency: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    counter = iter(range(n))

    async def worker(http: httpx.AsyncClient) -> None:
        for i in counter:
            r = await http.post(url + "/api/ocr", files={"image": ("l.png", images[i % len(images)], "image/png")})
            statuses[r.status_code] += 1

    async with httpx.AsyncClient(timeout=60) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return statuses


def cmd_memory(args: argparse.Namespace) -> int:
    """Server RSS after ``--first`` requests vs after ``--total``, sampled every ``--every`` requests.

    Growth that levels off is allocators reaching the peak batch size; a leak keeps growing linearly.
    """
    images = line_images(200, seed=1)
    series: list[tuple[int, float]] = []
    statuses: Counter[int] = Counter()
    with server(args) as (url, pid):
        if pid is None:
            raise SystemExit("memory needs the server's pid: start it here (--model) or pass --pid")
        start = rss_mib(pid)
        t0 = time.perf_counter()
        done = 0
        marks = sorted({args.first, args.total, *range(args.every, args.total + 1, args.every)})
        for mark in marks:
            statuses += asyncio.run(_requests(url, images, mark - done, args.concurrency))
            done = mark
            series.append((done, round(rss_mib(pid), 1)))
        elapsed = time.perf_counter() - t0
    rss = dict(series)
    growth = (rss[args.total] - rss[args.first]) / rss[args.first]
    figures = {
        "rss_start_mib": round(start, 1), f"rss_after_{args.first}_mib": rss[args.first],
        f"rss_after_{args.total}_mib": rss[args.total], "growth_pct": round(100 * growth, 2),
        "within_10pct": abs(growth) <= 0.10, "rss_series_mib": series,
        "statuses": {str(k): v for k, v in statuses.items()}, "elapsed_s": round(elapsed, 1),
    }
    report("memory", figures, args.json)
    return 0 if figures["within_10pct"] and set(statuses) == {200} else 1


# ---------------------------------------------------------------------------------------------- fuzz


def _png_header(w: int, h: int, idat: bytes = b"") -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _gif_header(w: int, h: int) -> bytes:
    screen = b"GIF89a" + struct.pack("<HH", w, h) + b"\x00\x00\x00"
    return screen + b"\x2c" + struct.pack("<HHHH", 0, 0, w, h) + b"\x00\x02\x02\x44\x01\x00\x3b"


def _bmp_header(w: int, h: int) -> bytes:
    return b"BM" + struct.pack("<IHHI", 54 + 16, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 16,
                                                                          2835, 2835, 0, 0) + b"\0" * 16


def _valid_images(seed: int) -> list[bytes]:
    base = Image.open(io.BytesIO(line_images(1, seed)[0])).convert("RGB")
    out = []
    for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"):
        buf = io.BytesIO()
        base.save(buf, fmt)
        out.append(buf.getvalue())
    return out


Case = tuple[str, dict[str, Any]]


def fuzz_cases(n: int, seed: int, max_bytes: int) -> list[Case]:
    """``n`` malformed uploads, cycling through the classes below (kind, httpx request kwargs)."""
    rng = random.Random(seed)
    valid = _valid_images(seed)
    magics = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*",
              b"RIFF\x00\x00\x00\x00WEBP"]

    def image(data: bytes, name: str = "x.png", ctype: str = "image/png") -> dict[str, Any]:
        return {"files": {"image": (name, data, ctype)}}

    def truncated() -> dict[str, Any]:
        v = rng.choice(valid)
        return image(v[: rng.randint(1, len(v) - 1)])

    def random_with_magic() -> dict[str, Any]:
        return image(rng.choice(magics) + rng.randbytes(rng.randint(0, 4096)))

    def bit_flipped() -> dict[str, Any]:
        v = bytearray(rng.choice(valid))
        for _ in range(rng.randint(1, 20)):
            v[rng.randrange(len(v))] ^= 1 << rng.randrange(8)
        return image(bytes(v))

    def bomb() -> dict[str, Any]:
        w, h = rng.choice([(100_000, 100_000), (65_535, 65_535), (1_000_000, 50), (50, 2_000_000), (9_000, 9_000)])
        make = rng.choice([lambda: _png_header(w, h, zlib.compress(b"\0" * 4096)),
                           lambda: _gif_header(min(w, 65535), min(h, 65535)), lambda: _bmp_header(w, h)])
        return image(make())

    def zero_size() -> dict[str, Any]:
        return image(rng.choice([b"", _png_header(0, rng.randint(0, 99)), _png_header(rng.randint(0, 99), 0),
                                 _gif_header(0, 0), _bmp_header(0, 10)]))

    def wrong_field() -> dict[str, Any]:
        name = rng.choice(["file", "img", "Image", "images", "upload", ""])
        return {"files": {name: ("x.png", rng.choice(valid), "image/png")}}

    def wrong_body() -> dict[str, Any]:
        return rng.choice([
            {"content": rng.randbytes(rng.randint(0, 2048)), "headers": {"Content-Type": "application/json"}},
            {"content": b"--b\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n" + rng.randbytes(64),
             "headers": {"Content-Type": "multipart/form-data; boundary=b"}},
            {"content": rng.randbytes(256), "headers": {"Content-Type": "multipart/form-data"}},
            {"content": rng.randbytes(rng.randint(0, 512)), "headers": {"Content-Type": "image/png"}},
            {"data": {"det": "none"}},
            {"content": b"", "headers": {"Content-Type": "text/plain"}},
        ])

    def bad_option() -> dict[str, Any]:
        params = rng.choice([{"det": "x" * rng.randint(1, 300)}, {"min_confidence": "NaN"},
                             {"min_confidence": "-1"}, {"preprocess": "sharpen,blur"}, {"chars": "maybe"}])
        return {**image(rng.choice(valid)), "params": params}

    def not_an_image() -> dict[str, Any]:
        return image(rng.choice([b"%PDF-1.4\n" + rng.randbytes(300), b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                                 "文本".encode() * 50, rng.randbytes(rng.randint(1, 3000))]))

    def too_large() -> dict[str, Any]:
        return image(b"\x89PNG\r\n\x1a\n" + b"\0" * (max_bytes + 1))

    classes: list[tuple[str, Callable[[], dict[str, Any]], int]] = [
        ("truncated", truncated, 20), ("random_with_magic", random_with_magic, 20), ("bit_flipped", bit_flipped, 15),
        ("bomb", bomb, 10), ("zero_size", zero_size, 8), ("wrong_field", wrong_field, 8),
        ("wrong_body", wrong_body, 8), ("bad_option", bad_option, 6), ("not_an_image", not_an_image, 10),
        ("too_large", too_large, 1),
    ]
    weights = [w for _, _, w in classes]
    cases = []
    for _ in range(n):
        name, make, _ = rng.choices(classes, weights)[0]
        cases.append((name, make()))
    return cases


async def _fuzz(url: str, cases: list[Case], concurrency: int) -> tuple[Counter[str], list[str]]:
    outcomes: Counter[str] = Counter()
    bad: list[str] = []
    queue = iter(cases)

    async def worker(http: httpx.AsyncClient) -> None:
        for kind, kwargs in queue:
            try:
                r = await http.post(url + "/api/ocr", **kwargs)
                status = r.status_code
                if status >= 500 or (status == 200 and kind not in ("bit_flipped", "truncated")):
                    bad.append(f"{kind}: {status} {r.text[:200]}")
                elif status != 200 and "error" not in r.json():
                    bad.append(f"{kind}: {status} without an error field")
                outcomes[f"{kind} {status}"] += 1
            except (httpx.HTTPError, ValueError) as e:
                outcomes[f"{kind} {type(e).__name__}"] += 1
                bad.append(f"{kind}: {type(e).__name__}")

    async with httpx.AsyncClient(timeout=60) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return outcomes, bad


def cmd_fuzz(args: argparse.Namespace) -> int:
    """Malformed uploads: only 4xx (or 200 for a damaged image that still decodes), never a 5xx."""
    cases = fuzz_cases(args.cases, args.seed, args.max_bytes)
    with server(args) as (url, pid):
        t0 = time.perf_counter()
        outcomes, bad = asyncio.run(_fuzz(url, cases, args.concurrency))
        health = httpx.get(url + "/health", timeout=10)
        figures = {
            "cases": len(cases), "elapsed_s": round(time.perf_counter() - t0, 1),
            "by_status": dict(Counter(k.split()[-1] for k in outcomes.elements())),
            "outcomes": dict(sorted(outcomes.items())), "server_errors_or_unexpected": bad[:20],
            "health_after": {"status_code": health.status_code, "body": health.json()},
            "server_rss_mib": round(rss_mib(pid), 1) if pid else None,
        }
    report("fuzz", figures, args.json)
    return 0 if not bad and health.status_code == 200 else 1


# ---------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one check."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="check", required=True)
    for name in ("load", "memory", "fuzz"):
        s = sub.add_parser(name)
        s.add_argument("--url", help="a running server on 127.0.0.1 (default: start one)")
        s.add_argument("--pid", type=int, help="its process id (for RSS figures)")
        s.add_argument("--model", help="model for the server started here (default: the bundled model)")
        s.add_argument("--workers", type=int, help="--workers of the server started here")
        s.add_argument("--det", help="--det of the server started here (classical | none)")
        s.add_argument("--json", help="also write the figures here")
    sub.choices["load"].add_argument("--clients", type=int, default=50)
    sub.choices["load"].add_argument("--duration", type=float, default=120.0, help="seconds (at most 600)")
    sub.choices["load"].add_argument("--timeout", type=float, default=60.0, help="per-request timeout, seconds")
    sub.choices["memory"].add_argument("--first", type=int, default=1000)
    sub.choices["memory"].add_argument("--total", type=int, default=10_000)
    sub.choices["memory"].add_argument("--concurrency", type=int, default=8)
    sub.choices["memory"].add_argument("--every", type=int, default=1000, help="sample RSS every N requests")
    sub.choices["fuzz"].add_argument("--cases", type=int, default=1200)
    sub.choices["fuzz"].add_argument("--seed", type=int, default=0)
    sub.choices["fuzz"].add_argument("--concurrency", type=int, default=4)
    sub.choices["fuzz"].add_argument("--max-bytes", type=int, default=20 * 1024 * 1024,
                                     help="the server's byte limit (for the too-large cases)")
    args = p.parse_args(argv)
    return {"load": cmd_load, "memory": cmd_memory, "fuzz": cmd_fuzz}[args.check](args)


if __name__ == "__main__":
    sys.exit(main())
