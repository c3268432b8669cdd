"""CTC decoding in NumPy: one decoder for evaluation, the engine and the service.

The model emits, for each of ``T`` frames, a probability over ``C`` classes (class 0 is the blank).
Greedy (best-path) decoding takes the most likely class per frame, merges runs of the same class and drops
blanks. Each character keeps the frames that produced it, which give its confidence (the highest
probability among them) and its horizontal extent.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
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
    return Decoded(tuple(labels), tuple(char_probs), tuple(spans), line_confidence(char_probs, probs))


def line_confidence(char_probs: Sequence[float], probs: np.ndarray) -> float:
    """A line's confidence: the geometric mean of its characters', or the mean blank probability if empty."""
    if len(char_probs):
        return float(math.exp(sum(math.log(max(p, 1e-12)) for p in char_probs) / len(char_probs)))
    return float(probs[:, BLANK].mean()) if len(probs) else 0.0


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


def _extended(labels: Sequence[int], states: int | None = None) -> np.ndarray:
    """The CTC state sequence of a labelling: a blank before, between and after its characters.

    ``states`` pads it with further blank states, so labellings of different lengths stack.
    """
    ext = np.zeros(states or 2 * len(labels) + 1, dtype=np.int64)
    ext[1: 2 * len(labels): 2] = labels
    return ext


def _can_skip(ext: np.ndarray) -> np.ndarray:
    """States a path may reach from two states back: characters that differ from the previous one."""
    skip = np.zeros(ext.shape, dtype=bool)
    skip[..., 2:] = (ext[..., 2:] != BLANK) & (ext[..., 2:] != ext[..., :-2])
    return skip


def _shift(a: np.ndarray, k: int) -> np.ndarray:
    """``a`` moved ``k`` states to the right along its last axis, ``-inf`` filled in."""
    out = np.full_like(a, -np.inf)
    out[..., k:] = a[..., :-k]
    return out


def _log_emissions(probs: np.ndarray, ext: np.ndarray) -> np.ndarray:
    """Log probabilities of the states' classes only: a line's full ``(T, C)`` log would cost far more."""
    return np.log(np.maximum(probs[:, ext].astype(np.float64), 1e-30))


def ctc_log_likelihoods(probs: np.ndarray, labellings: Sequence[Sequence[int]]) -> np.ndarray:
    """``log P(labels | frames)`` of each labelling, summed over every CTC alignment (the forward algorithm).

    ``probs`` is one line's ``(T, C)`` frame probabilities, or a window of its frames. Unlike the best
    path's probability this scores a whole reading, so rival readings of the same frames compare fairly.
    All labellings run in one pass over the frames. An empty window reads only the empty labelling.
    """
    lengths = np.array([len(x) for x in labellings], dtype=np.int64)
    if probs.shape[0] == 0 or not len(lengths):
        return np.where(lengths == 0, 0.0, -np.inf)
    states = 2 * int(lengths.max()) + 1
    ext = np.stack([_extended(x, states) for x in labellings])
    skip = _can_skip(ext)
    emit = _log_emissions(probs, ext)  # (T, labellings, states)
    alpha = np.full(ext.shape, -np.inf)
    alpha[:, :2] = emit[0, :, :2]
    for t in range(1, emit.shape[0]):
        jump = np.where(skip, _shift(alpha, 2), -np.inf)
        alpha = np.logaddexp(np.logaddexp(alpha, _shift(alpha, 1)), jump) + emit[t]
    rows = np.arange(len(lengths))
    last = alpha[rows, 2 * lengths]
    return np.where(lengths > 0, np.logaddexp(last, alpha[rows, np.maximum(2 * lengths - 1, 0)]), last)


def ctc_align(probs: np.ndarray, labels: Sequence[int]) -> list[tuple[int, int]]:
    """Frames of each character on the most likely alignment of ``labels`` (Viterbi), inclusive spans.

    Gives a reading chosen by something other than the best path (a lexicon) the character positions and
    confidences that best-path decoding gives its own. Needs at least one frame per character.
    """
    n_frames = probs.shape[0]
    if not labels:
        return []
    if n_frames < len(labels):
        raise ValueError(f"{len(labels)} characters cannot align to {n_frames} frames")
    ext = _extended(labels)
    skip = _can_skip(ext)
    emit = _log_emissions(probs, ext)
    score = np.full(len(ext), -np.inf)
    score[:2] = emit[0, :2]
    back = np.zeros((n_frames, len(ext)), dtype=np.int8)  # how many states back each best path came from
    for t in range(1, n_frames):
        options = np.stack([score, _shift(score, 1), np.where(skip, _shift(score, 2), -np.inf)])
        back[t] = options.argmax(axis=0)
        score = options.max(axis=0) + emit[t]
    state = len(ext) - 1 if score[-1] >= score[-2] else len(ext) - 2
    if score[state] == -np.inf:
        raise ValueError("the labels have no alignment to these frames (repeated characters need a blank between)")
    spans: dict[int, list[int]] = {}
    for t in range(n_frames - 1, -1, -1):
        if state % 2:
            spans.setdefault(state // 2, [t, t])[0] = t
        state -= int(back[t, state])
    return [(spans[k][0], spans[k][1]) for k in range(len(labels))]
