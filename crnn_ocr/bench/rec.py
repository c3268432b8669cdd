"""``crnn-ocr bench rec``: line recognisers side by side on the same pre-cut line images and thread count.

Systems: our fp32 and INT8 ONNX models (the engine's :class:`Recognizer`), the PyTorch checkpoint in eager
mode, PP-OCRv4 mobile rec as shipped in ``rapidocr_onnxruntime`` (its recognition stage alone), and
Tesseract 5 (``--psm 7``, ``chi_sim+eng``). Each system runs in its own child process, so its peak RSS is
its own and no library's thread pool competes with another's; images are decoded once, before timing.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crnn_ocr.evaluation import score

Predict = Callable[[list[np.ndarray]], list[str]]


@dataclass(frozen=True)
class SystemSpec:
    """How to build one system in a child process: ``kind`` plus a model path (when it has one)."""

    name: str
    kind: str  # onnx | torch | rapidocr | tesseract
    model: str = ""
    lexicon: bool = True  # ours: correct words from the lexicon (the engine's default)


@dataclass
class SystemResult:
    """Speed, memory and accuracy of one system over all the sets."""

    system: str
    threads: int
    lines: int
    model_mb: float
    load_s: float
    b1_ms_median: float
    b1_ms_p90: float
    b1_lines_per_s: float
    batched_lines_per_s: float
    batched_ms_per_line: float
    peak_rss_mb: float
    sets: dict[str, dict[str, float]] = field(default_factory=dict)
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


# ------------------------------------------------------------------------------------------------ systems


def rapidocr_rec_model() -> Path:
    """The PP-OCRv4 recognition model file inside the installed ``rapidocr_onnxruntime`` package."""
    import rapidocr_onnxruntime

    root = Path(rapidocr_onnxruntime.__file__).parent
    from rapidocr_onnxruntime.utils import read_yaml

    return root / read_yaml(root / "config.yaml")["Rec"]["model_path"]


def _rapidocr(threads: int) -> tuple[Predict, float]:
    import cv2
    import rapidocr_onnxruntime
    from rapidocr_onnxruntime.ch_ppocr_rec import TextRecognizer
    from rapidocr_onnxruntime.utils import read_yaml

    root = Path(rapidocr_onnxruntime.__file__).parent
    cfg = dict(read_yaml(root / "config.yaml")["Rec"])
    # Its shipped batch size (6) is kept: its SVTR mixing blocks cost more per line in wide padded batches
    # (batches of 32 ran 4x slower per line than single lines here).
    cfg.update(model_path=str(root / cfg["model_path"]), intra_op_num_threads=threads, inter_op_num_threads=1)
    rec = TextRecognizer(cfg)

    def run(images: list[np.ndarray]) -> list[str]:
        bgr = [cv2.cvtColor(im, cv2.COLOR_GRAY2BGR) if im.ndim == 2 else im for im in images]
        out, _ = rec(bgr)
        return [str(r[0]) for r in out]

    return run, Path(cfg["model_path"]).stat().st_size / 2**20


def tesseract_available() -> bool:
    """Whether a ``tesseract`` binary with ``chi_sim`` and ``eng`` data is on the PATH."""
    try:
        out = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    langs = set(out.stdout.split())
    return {"chi_sim", "eng"} <= langs


def _tesseract(threads: int) -> tuple[Predict, float]:
    import cv2

    out = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, timeout=30)
    tessdata = Path(out.stdout.split('"')[1]) if '"' in out.stdout else None
    size = sum((tessdata / f"{lang}.traineddata").stat().st_size for lang in ("chi_sim", "eng")) if tessdata else 0
    env = {**os.environ, "OMP_THREAD_LIMIT": str(threads)}
    tmp = tempfile.TemporaryDirectory(prefix="crnn-ocr-tess-")

    def run(images: list[np.ndarray]) -> list[str]:
        texts = []
        for k, im in enumerate(images):
            path = Path(tmp.name) / f"{k}.png"
            cv2.imwrite(str(path), im)
            res = subprocess.run(["tesseract", str(path), "stdout", "--psm", "7", "-l", "chi_sim+eng"],
                                 capture_output=True, text=True, env=env, timeout=120)
            texts.append(" ".join(res.stdout.split()))
        return texts

    run.tmp = tmp  # type: ignore[attr-defined]  # keep the folder alive as long as the system
    return run, size / 2**20


def _ours(spec: SystemSpec, threads: int, batch_size: int) -> tuple[Predict, float]:
    from crnn_ocr.engine import Recognizer

    if spec.kind == "torch":
        import torch

        from crnn_ocr.train.backend import TorchBackend

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
        backend = TorchBackend.from_checkpoint(spec.model, threads=threads)
        rec = Recognizer(backend, batch_size=batch_size, lexicon=spec.lexicon)
        size = sum(t.numel() * t.element_size() for t in backend.model.state_dict().values())  # fp32 weights
    else:
        rec = Recognizer(spec.model, threads=threads, batch_size=batch_size, lexicon=spec.lexicon)
        size = Path(spec.model).stat().st_size

    def run(images: list[np.ndarray]) -> list[str]:
        return [r.text for r in rec(images)]

    return run, size / 2**20


def build_system(spec: SystemSpec, threads: int, batch_size: int) -> tuple[Predict, float]:
    """The predict function of a system and its model size in MiB."""
    if spec.kind in ("onnx", "torch"):
        return _ours(spec, threads, batch_size)
    if spec.kind == "rapidocr":
        return _rapidocr(threads)
    if spec.kind == "tesseract":
        return _tesseract(threads)
    raise ValueError(f"unknown system kind {spec.kind!r}")


# ---------------------------------------------------------------------------------------------- measuring


def load_sets(folders: Sequence[str | Path], limit: int = 0) -> dict[str, list[tuple[Path, str]]]:
    """``{set name: [(image path, truth)]}`` from ``labels.tsv`` folders, the first ``limit`` of each."""
    from crnn_ocr.data.labels import read_labels_tsv

    sets: dict[str, list[tuple[Path, str]]] = {}
    for folder in folders:
        items = [(x.path, x.text) for x in read_labels_tsv(folder)]
        sets[Path(folder).name] = items[:limit] if limit > 0 else items
    return sets


def _read_images(paths: Sequence[Path]) -> list[np.ndarray]:
    import cv2

    images = []
    for p in paths:
        im = cv2.imdecode(np.fromfile(str(p), dtype=np.uint8), cv2.IMREAD_COLOR)
        if im is None:
            raise ValueError(f"cannot decode {p}")
        images.append(im)
    return images


def _peak_rss_mb() -> float:
    """Peak RSS of this process and of the children it waited for (Tesseract runs as children)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024  # KiB on Linux


def measure(spec: SystemSpec, sets: dict[str, list[tuple[Path, str]]], threads: int, batch_size: int,
            warmup: int = 8, repeats: int = 3) -> SystemResult:
    """Time one system at batch 1 and batched, and score its output.

    Batch 1 times each line alone (median, p90); batched runs all lines, best of ``repeats`` passes, which
    filters out other processes' bursts on a shared machine.
    """
    names = [n for n, items in sets.items() for _ in items]
    truths = [t for items in sets.values() for _, t in items]
    images = _read_images([p for items in sets.values() for p, _ in items])
    t0 = time.perf_counter()
    predict, size_mb = build_system(spec, threads, batch_size)
    load_s = time.perf_counter() - t0
    predict(images[:warmup])
    per_line, preds = [], []
    for im in images:
        t = time.perf_counter()
        preds += predict([im])
        per_line.append(time.perf_counter() - t)
    if spec.kind == "tesseract":  # one process per line: batching changes nothing, so don't run it twice
        batched = sum(per_line)
    else:
        batched = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            preds = []
            for i in range(0, len(images), batch_size * 4):
                preds.extend(predict(images[i: i + batch_size * 4]))
            batched = min(batched, time.perf_counter() - t)
    n = len(images)
    ms = sorted(1000 * x for x in per_line)
    result = SystemResult(
        system=spec.name, threads=threads, lines=n, model_mb=round(size_mb, 2), load_s=round(load_s, 3),
        b1_ms_median=round(statistics.median(ms), 3), b1_ms_p90=round(ms[min(n - 1, int(0.9 * n))], 3),
        b1_lines_per_s=round(n / sum(per_line), 2), batched_lines_per_s=round(n / batched, 2),
        batched_ms_per_line=round(1000 * batched / n, 3), peak_rss_mb=round(_peak_rss_mb(), 1),
    )
    for name in sets:
        pairs = [(tr, p) for nm, tr, p in zip(names, truths, preds, strict=True) if nm == name]
        m = score(pairs, name)
        result.sets[name] = {"lines": m.lines, "acc": round(m.acc, 4), "acc_nospace": round(m.acc_nospace, 4),
                             "acc_alnum_ci": round(m.acc_alnum_ci, 4), "cer": round(m.cer, 4),
                             "ned": round(m.ned, 4)}
    return result


def _child(spec: SystemSpec, sets: dict[str, list[tuple[Path, str]]], threads: int, batch_size: int,
           ) -> dict[str, Any]:
    os.environ.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    try:
        return measure(spec, sets, threads, batch_size).to_dict()
    except Exception as e:  # a missing optional engine must not sink the other systems' figures
        return {"system": spec.name, "error": f"{type(e).__name__}: {e}"}


def run_bench(specs: Sequence[SystemSpec], sets: dict[str, list[tuple[Path, str]]], threads: int = 1,
              batch_size: int = 32, log: Callable[[str], None] = print) -> list[SystemResult]:
    """Measure every system in turn, each in a fresh spawned process; failures are reported, not raised."""
    ctx = mp.get_context("spawn")
    results = []
    for spec in specs:
        log(f"bench rec: {spec.name} ...")
        with ctx.Pool(1) as pool:
            d = pool.apply(_child, (spec, sets, threads, batch_size))
        if d.get("error") and "lines" not in d:
            log(f"bench rec: {spec.name} failed: {d['error']}")
            results.append(SystemResult(spec.name, threads, 0, 0, 0, 0, 0, 0, 0, 0, 0, error=d["error"]))
        else:
            results.append(SystemResult(**d))
    return results


# --------------------------------------------------------------------------------------------- reporting


def ratios(results: Sequence[SystemResult], ours: str, theirs: str) -> dict[str, float]:
    """Lines/s of ``ours`` over ``theirs`` at batch 1 and batched (missing systems give no entry)."""
    by = {r.system: r for r in results if not r.error}
    if ours not in by or theirs not in by:
        return {}
    a, b = by[ours], by[theirs]
    return {"batch1": round(a.b1_lines_per_s / max(b.b1_lines_per_s, 1e-9), 2),
            "batched": round(a.batched_lines_per_s / max(b.batched_lines_per_s, 1e-9), 2)}


def markdown(results: Sequence[SystemResult], ratio: dict[str, float] | None = None, note: str = "") -> str:
    """The comparison as a Markdown table, accuracy per set after the speed columns."""
    set_names = list(dict.fromkeys(s for r in results for s in r.sets))
    head = ["system", "model MB", "b1 ms median", "b1 ms p90", "b1 lines/s", "batched lines/s",
            "batched ms/line", "peak RSS MB", *[f"{s} acc / acc-nospace / alnum-ci / CER" for s in set_names]]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        if r.error:
            rows.append(f"| {r.system} | failed: {r.error} |" + " |" * (len(head) - 2))
            continue
        accs = [f"{r.sets[s]['acc']:.1%} / {r.sets[s]['acc_nospace']:.1%} / {r.sets[s]['acc_alnum_ci']:.1%} / "
                f"{r.sets[s]['cer']:.1%}" if s in r.sets else "" for s in set_names]
        rows.append("| " + " | ".join([r.system, f"{r.model_mb:.2f}", f"{r.b1_ms_median:.2f}", f"{r.b1_ms_p90:.2f}",
                                      f"{r.b1_lines_per_s:.1f}", f"{r.batched_lines_per_s:.1f}",
                                      f"{r.batched_ms_per_line:.2f}", f"{r.peak_rss_mb:.0f}", *accs]) + " |")
    text = "\n".join(rows) + "\n"
    if ratio:
        text += (f"\nINT8 / PP-OCRv4 rec lines/s at equal threads: batch 1 {ratio['batch1']:.2f}x, "
                 f"batched {ratio['batched']:.2f}x\n")
    if note:
        text += f"\n{note}\n"
    return text


def environment(threads: int, batch_size: int) -> dict[str, Any]:
    """Where and how the figures were taken."""
    import onnxruntime

    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name")), "")
    return {"threads": threads, "batch_size": batch_size, "cpu": cpu or platform.processor(),
            "cpus_visible": os.cpu_count(), "load_avg": [round(x, 2) for x in os.getloadavg()],
            "onnxruntime": onnxruntime.__version__, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def write_json(results: Sequence[SystemResult], path: str | Path, meta: dict[str, Any]) -> None:
    """The full results with the run's environment."""
    payload = {"meta": meta, "systems": [r.to_dict() for r in results]}
    Path(path).write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
