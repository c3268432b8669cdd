"""Write synthetic lines to disk (``labels.tsv`` folder or LMDB) in parallel, resumably; measure speed.

Sample ``i`` of the stream becomes file ``img/NNNN/iiiiiiiii.png`` (or LMDB entry ``i + 1``), so a rerun
with the same seed skips what is already there and a larger ``count`` appends to the set.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from crnn_ocr.charset import Charset
from crnn_ocr.data.labels import LABELS_FILE
from crnn_ocr.synth.config import SynthConfig
from crnn_ocr.synth.stream import SynthStream

META_FILE = "synth.json"
Progress = Callable[[int], None]


def file_name(i: int) -> str:
    """Relative path of sample ``i`` in a ``files`` set (10,000 images per folder)."""
    return f"img/{i // 10000:04d}/{i:09d}.png"


def encode_png(img: np.ndarray) -> bytes:
    """Lossless encoding (degradations already include JPEG where wanted)."""
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def written_indices_tsv(out: Path) -> set[int]:
    """Sample indices already listed in ``out/labels.tsv`` (files named by :func:`file_name`)."""
    tsv = out / LABELS_FILE
    if not tsv.is_file():
        return set()
    done = set()
    for row in tsv.read_text(encoding="utf-8").splitlines():
        name = row.split("\t", 1)[0]
        stem = Path(name).stem
        if stem.isdigit():
            done.add(int(stem))
    return done


def _check_meta(out: Path, seed: int, cfg: SynthConfig, charset: Charset) -> None:
    """Refuse to append samples of another seed/config/charset to an existing set; record them otherwise."""
    meta = json.loads(json.dumps({"seed": seed, "charset_sha256": charset.sha256, "config": cfg.to_dict()}))
    path = out / META_FILE
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        if any(old.get(k) != v for k, v in meta.items()):
            raise ValueError(f"{out} holds samples of another seed, charset or config ({path}); use a new --out")
        return
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")


_WORKER: dict[str, SynthStream] = {}


def _init_worker(stream: SynthStream) -> None:
    _WORKER["stream"] = stream


def _render_chunk(indices: list[int]) -> list[tuple[int, bytes, str]]:
    stream = _WORKER["stream"]
    out = []
    for i in indices:
        img, text = stream[i]
        out.append((i, encode_png(img), text))
    return out


def _chunks(todo: list[int], size: int) -> Iterator[list[int]]:
    for k in range(0, len(todo), size):
        yield todo[k:k + size]


def _rendered(stream: SynthStream, todo: list[int], workers: int) -> Iterator[list[tuple[int, bytes, str]]]:
    """Rendered chunks in order, from a pool of forked workers sharing the parent's loaded resources."""
    chunk = 64
    if workers <= 1:
        _init_worker(stream)
        yield from map(_render_chunk, _chunks(todo, chunk))
        return
    stream.resources  # noqa: B018  load fonts and corpus once, before forking
    with mp.get_context("fork").Pool(workers, initializer=_init_worker, initargs=(stream,)) as pool:
        yield from pool.imap(_render_chunk, _chunks(todo, chunk))


def generate(out: str | Path, count: int, cfg: SynthConfig, charset: Charset, seed: int = 0, fmt: str = "files",
             workers: int = 1, start: int = 0, progress: Progress | None = None) -> int:
    """Write samples ``start .. start + count - 1`` that are not there yet; returns how many were written.

    Args:
        out: folder (``files``: images + ``labels.tsv``; ``lmdb``: the LMDB environment).
        count: number of sample indices wanted, from ``start`` on.
        cfg: synthesis settings (an existing set must have been made with the same ones).
        charset: label symbols (the same for an existing set).
        seed: the stream's seed (the same for an existing set).
        fmt: ``files`` or ``lmdb``.
        start: first sample index.
        workers: rendering processes.
        progress: called with the number of samples finished after each chunk (including skipped ones).
    """
    if fmt not in ("files", "lmdb"):
        raise ValueError(f"format must be files or lmdb, not {fmt!r}")
    out = Path(out)
    _check_meta(out, seed, cfg, charset)
    stream = SynthStream(cfg, charset=charset, seed=seed)
    wanted = range(start, start + count)
    if fmt == "lmdb":
        from crnn_ocr.data.lmdb_set import LmdbWriter

        writer = LmdbWriter(out)
        todo = [i for i in wanted if not writer.has(i + 1)]
    else:
        done = written_indices_tsv(out)
        todo = [i for i in wanted if i not in done]
    if progress:
        progress(count - len(todo))
    written = 0
    try:
        if fmt == "lmdb":
            for chunk in _rendered(stream, todo, workers):
                for i, png, text in chunk:
                    writer.put(i + 1, png, text)
                written += len(chunk)
                if progress:
                    progress(len(chunk))
        else:
            with (out / LABELS_FILE).open("a", encoding="utf-8") as tsv:
                for chunk in _rendered(stream, todo, workers):
                    for i, png, _ in chunk:
                        path = out / file_name(i)
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_bytes(png)
                    # Rows only after their images exist: an interrupted run leaves a readable set.
                    tsv.write("".join(f"{file_name(i)}\t{text}\n" for i, _, text in chunk))
                    tsv.flush()
                    written += len(chunk)
                    if progress:
                        progress(len(chunk))
    finally:
        if fmt == "lmdb":
            writer.close()
    return written


def bench(cfg: SynthConfig, charset: Charset, lines: int = 2000, warmup: int = 200, seed: int = 0,
          prepare: bool = True, prepare_workers: int = 1) -> dict[str, Any]:
    """Lines per second of one process with the configured degradations (``degrade`` as in ``cfg``).

    Fonts, corpus and glyph atlases are prepared first (reported separately): they are a one-off cost
    per process (atlases: per machine, when the cache folder is writable).
    """
    stream = SynthStream(cfg, charset=charset, seed=seed)
    t0 = time.perf_counter()
    lib = stream.resources.fonts
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    built = lib.prepare(cfg.fonts.sizes, workers=prepare_workers) if prepare else 0
    t_atlas = time.perf_counter() - t0
    for i in range(warmup):
        stream[i]
    c0, w0 = time.process_time(), time.perf_counter()
    chars = 0
    heights = []
    for i in range(warmup, warmup + lines):
        img, text = stream[i]
        chars += len(text)
        heights.append(img.shape[0])
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return {
        "lines": lines,
        "lines_per_s_cpu": lines / cpu,
        "lines_per_s_wall": lines / wall,
        "ms_per_line_cpu": 1000 * cpu / lines,
        "mean_chars": chars / lines,
        "mean_height": float(np.mean(heights)),
        "degrade": cfg.degrade,
        "max_chars": cfg.max_chars,
        "resources_s": t_load,
        "atlases_built": built,
        "atlases_s": t_atlas,
        "faces": len(lib.faces),
        "missing_chars": "".join(lib.missing()),
    }
