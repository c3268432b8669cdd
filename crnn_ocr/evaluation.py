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

from crnn_ocr.charset import is_hanzi, normalize_text


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


def align(truth: str, pred: str) -> list[tuple[str, str]]:
    """A minimum-edit alignment as ``(truth char, predicted char)`` pairs; ``""`` marks a gap.

    Ties prefer substitutions, then deletions, so ``("ab", "b")`` aligns ``a`` with a gap.
    """
    n, m = len(truth), len(pred)
    d = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = i
    for j in range(m + 1):
        d[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (truth[i - 1] != pred[j - 1]))
    out: list[tuple[str, str]] = []
    i, j = n, m
    while i or j:
        if i and j and d[i][j] == d[i - 1][j - 1] + (truth[i - 1] != pred[j - 1]):
            out.append((truth[i - 1], pred[j - 1]))
            i, j = i - 1, j - 1
        elif i and d[i][j] == d[i - 1][j] + 1:
            out.append((truth[i - 1], ""))
            i -= 1
        else:
            out.append(("", pred[j - 1]))
            j -= 1
    return out[::-1]


def char_class(c: str) -> str:
    """``han``, ``latin``, ``digit`` or ``punct``: the groups whose error rates point at different data gaps."""
    if is_hanzi(c):
        return "han"
    if c.isascii() and c.isalpha():
        return "latin"
    if c.isascii() and c.isdigit():
        return "digit"
    return "punct"


@dataclass
class ErrorBreakdown:
    """Where the errors of a set are: per character class, and the most frequent confusions.

    ``by_class[cls]`` counts truth characters of that class and their substitutions and deletions, plus
    insertions of predicted characters of that class; ``rate`` = (sub + del + ins) / chars.
    ``confusions``: ``(truth, pred, count)``, most frequent first (``""`` = missing / extra character).
    """

    by_class: dict[str, dict[str, float]]
    confusions: list[tuple[str, str, int]]


def _compared(s: str, ignore_case: bool = False) -> str:
    """A string as the CER, the breakdown and the error list compare it: normalised, without spaces."""
    s = _nospace(normalize_text(s))
    return s.lower() if ignore_case else s


def error_breakdown(pairs: Sequence[tuple[str, str]], top: int = 20, ignore_case: bool = False) -> ErrorBreakdown:
    """Aggregate the edit operations of ``(truth, prediction)`` pairs, normalised and without spaces as CER is.

    ``ignore_case`` folds case first, for sets labelled in one case whatever the print (SROIE's capitals), so
    the confusions show misread shapes rather than the labelling convention.
    """
    counts: dict[str, dict[str, int]] = {}
    confusions: dict[tuple[str, str], int] = {}
    for truth, pred in pairs:
        t, p = _compared(truth, ignore_case), _compared(pred, ignore_case)
        for a, b in align(t, p):
            c = counts.setdefault(char_class(a or b), {"chars": 0, "sub": 0, "del": 0, "ins": 0})
            if a:
                c["chars"] += 1
            if a == b:
                continue
            c["sub" if a and b else "del" if a else "ins"] += 1
            confusions[(a, b)] = confusions.get((a, b), 0) + 1
    by_class = {k: {**v, "rate": (v["sub"] + v["del"] + v["ins"]) / max(v["chars"], 1)}
                for k, v in sorted(counts.items())}
    ranked = sorted(confusions.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return ErrorBreakdown(by_class, [(a, b, n) for (a, b), n in ranked])


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
    breakdown: ErrorBreakdown | None = None

    def to_dict(self, with_errors: bool = False) -> dict:
        """JSON-ready form."""
        d = asdict(self)
        if not with_errors:
            d.pop("errors")
        if d["breakdown"] is None:
            d.pop("breakdown")
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


EVAL_CHUNK = 1024
"""Lines handed to the recogniser at once by :func:`evaluate_set` (it batches them by width)."""


def evaluate_set(predict: Predict, items: Sequence[tuple[Path, str]], name: str, errors: int = 0,
                 chunk: int = EVAL_CHUNK, breakdown: bool = False, ignore_case: bool = False) -> SetMetrics:
    """Run ``predict`` over ``(image path, truth)`` items and score them; keep the ``errors`` worst lines.

    ``predict`` gets ``chunk`` lines at a time: the recogniser groups them by width, so lines are batched
    with lines of similar width (as the page pipeline and the service batch them), not with their neighbours
    in the file. ``breakdown`` adds the per-class error rates and top confusions (:func:`error_breakdown`).
    ``ignore_case`` folds case in the breakdown and the error list; the accuracy figures stay as they are.
    """
    preds: list[str] = []
    t0 = time.perf_counter()
    for i in range(0, len(items), chunk):
        preds.extend(predict([p for p, _ in items[i: i + chunk]]))
    elapsed = time.perf_counter() - t0
    pairs = [(t, p) for (_, t), p in zip(items, preds, strict=True)]
    m = score(pairs, name)
    m.lines_per_s = len(items) / elapsed if elapsed > 0 else 0.0
    if breakdown:
        m.breakdown = error_breakdown(pairs, ignore_case=ignore_case)
    if errors:
        scored = []
        for (path, truth), pred in zip(items, preds, strict=True):
            t, p = _compared(truth, ignore_case), _compared(pred, ignore_case)
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
