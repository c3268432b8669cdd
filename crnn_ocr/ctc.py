"""CTC decoding in NumPy: one decoder for evaluation, the engine and the service.

The model emits, for each of ``T`` frames, a probability over ``C`` classes (class 0 is the blank).
Greedy (best-path) decoding takes the most likely class per frame, merges runs of the same class and drops
blanks. Each character keeps the frames that produced it, which give its confidence (the highest
probability among them) and its horizontal extent.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from crnn_ocr.charset import BLANK


@dataclass(frozen=True)
class Decoded:
    """One decoded line in frame units.

    Attributes:
        labels: class indices of the characters (no blanks).
        char_probs: per character, the maximum probability among the frames that produced it.
        spans: per character, ``(first_frame, last_frame)`` inclusive.
        confidence: line confidence: the geometric mean of the character confidences, or the mean
            blank probability for an empty line.
    """

    labels: tuple[int, ...]
    char_probs: tuple[float, ...]
    spans: tuple[tuple[int, int], ...]
    confidence: float


def greedy_decode(probs: np.ndarray, length: int | None = None, allowed: np.ndarray | None = None,
                  weights: np.ndarray | None = None) -> Decoded:
    """Best-path decode one ``(T, C)`` probability matrix (only the first ``length`` frames if given).

    ``allowed``, an array of class indices that should include the blank, restricts each frame's choice to
    those classes. ``weights``, one factor in ``[0, 1]`` per class, is a prior on the choice: a frame picks
    the class with the highest ``probability x weight`` (0 never picks the class). Confidences stay the
    model's own probabilities either way, so a character the model would rather have read as something
    the restriction or prior ruled out comes back with a low confidence.
    """
    if probs.ndim != 2:
        raise ValueError(f"expected (T, C) probabilities, got shape {probs.shape}")
    if length is not None:
        probs = probs[: max(0, length)]
    if probs.shape[0] == 0:
        return Decoded((), (), (), 0.0)
    if allowed is None:
        best = probs.argmax(axis=1)
    else:
        if allowed.size == 0 or allowed.min() < 0 or allowed.max() >= probs.shape[1]:
            raise ValueError(f"allowed classes must be a non-empty subset of 0..{probs.shape[1] - 1}")
        best = allowed[probs[:, allowed].argmax(axis=1)]
    if weights is not None:
        best = _weighted_best(probs, best, weights, allowed)
    best_p = probs[np.arange(len(best)), best]
    labels: list[int] = []
    char_probs: list[float] = []
    spans: list[tuple[int, int]] = []
    prev = BLANK
    for t, (c, p) in enumerate(zip(best.tolist(), best_p.tolist(), strict=True)):
        if c != BLANK:
            if c == prev:
                char_probs[-1] = max(char_probs[-1], p)
                spans[-1] = (spans[-1][0], t)
            else:
                labels.append(c)
                char_probs.append(p)
                spans.append((t, t))
        prev = c
    if char_probs:
        conf = float(math.exp(sum(math.log(max(p, 1e-12)) for p in char_probs) / len(char_probs)))
    else:
        conf = float(probs[:, BLANK].mean())
    return Decoded(tuple(labels), tuple(char_probs), tuple(spans), conf)


def _weighted_best(probs: np.ndarray, best: np.ndarray, weights: np.ndarray, allowed: np.ndarray | None,
                   ) -> np.ndarray:
    """Each frame's best class under a prior of per-class weights in ``[0, 1]``.

    Weights never raise a score, so a frame whose plain best class has weight 1 keeps it: only the other
    frames (usually none) are rescored.
    """
    if weights.shape != (probs.shape[1],):
        raise ValueError(f"expected one weight per class ({probs.shape[1]}), got shape {weights.shape}")
    if weights.min() < 0.0 or weights.max() > 1.0:
        raise ValueError("class weights must lie in [0, 1]")
    redo = np.nonzero(weights[best] < 1.0)[0]
    if redo.size == 0:
        return best
    best = best.copy()
    scores = probs[redo] * weights
    if allowed is not None:
        best[redo] = allowed[scores[:, allowed].argmax(axis=1)]
    else:
        best[redo] = scores.argmax(axis=1)
    return best


def greedy_decode_batch(probs: np.ndarray, lengths: np.ndarray | None = None) -> list[Decoded]:
    """Decode a ``(N, T, C)`` batch; ``lengths`` holds each line's valid frame count (padding excluded)."""
    if probs.ndim != 3:
        raise ValueError(f"expected (N, T, C) probabilities, got shape {probs.shape}")
    n = probs.shape[0]
    lens = [None] * n if lengths is None else [int(x) for x in lengths]
    return [greedy_decode(probs[i], lens[i]) for i in range(n)]


def _logsumexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def beam_decode(probs: np.ndarray, beam: int = 5, prune: float = 1e-4) -> tuple[tuple[int, ...], float]:
    """CTC prefix beam search over one ``(T, C)`` matrix; returns the best label sequence and its log-prob.

    Slower than :func:`greedy_decode` and rarely better without a language model; kept for comparison.
    Classes below ``prune`` probability in a frame are skipped.
    """
    log_probs = np.log(np.maximum(probs, 1e-30))
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -math.inf)}  # prefix -> (p_blank, p_nb)
    for t in range(probs.shape[0]):
        cand = np.nonzero(probs[t] >= prune)[0].tolist() or [int(probs[t].argmax())]
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [-math.inf, -math.inf])
        for prefix, (pb, pnb) in beams.items():
            total = _logsumexp(pb, pnb)
            for c in cand:
                lp = float(log_probs[t, c])
                if c == BLANK:
                    e = nxt[prefix]
                    e[0] = _logsumexp(e[0], total + lp)
                    continue
                last = prefix[-1] if prefix else None
                ext = (*prefix, c)
                e = nxt[ext]
                if c == last:
                    e[1] = _logsumexp(e[1], pb + lp)
                    same = nxt[prefix]
                    same[1] = _logsumexp(same[1], pnb + lp)
                else:
                    e[1] = _logsumexp(e[1], total + lp)
        ranked = sorted(nxt.items(), key=lambda kv: _logsumexp(*kv[1]), reverse=True)[:beam]
        beams = {k: (v[0], v[1]) for k, v in ranked}
    best, (pb, pnb) = max(beams.items(), key=lambda kv: _logsumexp(*kv[1]))
    return best, _logsumexp(pb, pnb)
