"""Recognition metrics and the evaluation runner behind ``crnn-ocr eval`` (torch-free).

Both truth and prediction are normalised with :func:`crnn_ocr.charset.normalize_text` first.
Metrics per set:

- ``acc``: exact line accuracy;
- ``acc_nospace``: line accuracy with all spaces removed (Chinese labels mark spaces only where clearly
  visible, so this is the headline figure for Chinese);
- ``acc_alnum_ci``: line accuracy on letters and digits only, case-insensitive (receipts labelled in
  upper case; the headline figure for English);
- ``cer``: total edit distance / total truth characters;
- ``ned``: mean of 1 - normalised edit distance per line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from crnn_ocr.charset import normalize_text


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance (unit costs) between two sequences."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _nospace(s: str) -> str:
    return s.replace(" ", "")


def _alnum_ci(s: str) -> str:
    return "".join(c for c in s.lower() if c.isascii() and c.isalnum())


@dataclass
class SetMetrics:
    """Aggregated metrics over one evaluation set."""

    name: str
    lines: int = 0
    acc: float = 0.0
    acc_nospace: float = 0.0
    acc_alnum_ci: float = 0.0
    cer: float = 0.0
    ned: float = 0.0
    lines_per_s: float = 0.0
    errors: list[dict[str, str | float]] = field(default_factory=list)

    def to_dict(self, with_errors: bool = False) -> dict:
        """JSON-ready form."""
        d = asdict(self)
        if not with_errors:
            d.pop("errors")
        return d


def score(pairs: Sequence[tuple[str, str]], name: str = "set") -> SetMetrics:
    """Metrics for ``(truth, prediction)`` pairs (raw strings; both are normalised here)."""
    m = SetMetrics(name=name, lines=len(pairs))
    if not pairs:
        return m
    exact = nospace = alnum = 0
    dist_total = char_total = 0
    ned_sum = 0.0
    for truth, pred in pairs:
        t, p = normalize_text(truth), normalize_text(pred)
        exact += t == p
        nospace += _nospace(t) == _nospace(p)
        alnum += _alnum_ci(t) == _alnum_ci(p)
        d = edit_distance(_nospace(t), _nospace(p))
        dist_total += d
        char_total += len(_nospace(t))
        ned_sum += 1.0 - d / max(len(_nospace(t)), len(_nospace(p)), 1)
    n = len(pairs)
    m.acc, m.acc_nospace, m.acc_alnum_ci = exact / n, nospace / n, alnum / n
    m.cer = dist_total / max(char_total, 1)
    m.ned = ned_sum / n
    return m


Predict = Callable[[list[Path]], list[str]]


def evaluate_set(predict: Predict, items: Sequence[tuple[Path, str]], name: str, errors: int = 0,
                 batch: int = 64) -> SetMetrics:
    """Run ``predict`` over ``(image path, truth)`` items and score them; keep the ``errors`` worst lines."""
    preds: list[str] = []
    t0 = time.perf_counter()
    for i in range(0, len(items), batch):
        preds.extend(predict([p for p, _ in items[i: i + batch]]))
    elapsed = time.perf_counter() - t0
    pairs = [(t, p) for (_, t), p in zip(items, preds, strict=True)]
    m = score(pairs, name)
    m.lines_per_s = len(items) / elapsed if elapsed > 0 else 0.0
    if errors:
        scored = []
        for (path, truth), pred in zip(items, preds, strict=True):
            t, p = _nospace(normalize_text(truth)), _nospace(normalize_text(pred))
            if t != p:
                scored.append((edit_distance(t, p) / max(len(t), 1), path, truth, pred))
        scored.sort(key=lambda s: -s[0])
        m.errors = [{"file": str(p.name), "truth": t, "pred": q, "ned": round(1 - d, 3)}
                    for d, p, t, q in scored[:errors]]
    return m


def write_report(results: Sequence[SetMetrics], path: str | Path, meta: dict | None = None) -> None:
    """Write the JSON report of an evaluation run."""
    payload = {"meta": meta or {}, "sets": [r.to_dict(with_errors=True) for r in results]}
    Path(path).write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
