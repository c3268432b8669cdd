"""Deterministic, width-bucketed training batches from a weighted mix of line sources.

Everything is a pure function of ``(seed, chunk index)``: chunk ``k`` draws ``chunk_size`` sample indices,
picks each sample's source by weight, renders or reads it, preprocesses it with the shared
:mod:`crnn_ocr.preprocess` chain, sorts by width and cuts it into batches under a pixel budget. Resuming a
run is therefore just "start again at chunk k, skip the batches already done", and DataLoader workers can
build chunks in any order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from crnn_ocr.charset import Charset, OnUnknown
from crnn_ocr.preprocess import PreprocessConfig, pad_batch, prepare_line, width_buckets


class LineSource(Protocol):
    """Anything indexable that yields ``(gray uint8 image, raw text)``.

    Finite sets also have ``__len__`` (items are drawn at random); endless streams (the synthetic one)
    have none and are indexed by the global sample number.
    """

    def __getitem__(self, i: int) -> tuple[np.ndarray, str]:
        """Sample ``i``."""
        ...


@dataclass(frozen=True)
class Batch:
    """One training batch: padded images ``(N, 1, H, W)``, concatenated targets and their lengths."""

    images: np.ndarray
    targets: np.ndarray
    target_lengths: np.ndarray
    widths: np.ndarray
    texts: tuple[str, ...]


@dataclass
class BatchPlan:
    """How chunks are cut into batches.

    Args:
        chunk_size: samples drawn per chunk (several batches, so width sorting has material to work on).
        batch_size: most lines per batch.
        max_batch_pixels: cap on ``lines x padded width`` columns, so long-line batches shrink.
        max_width: lines wider than this after resizing are dropped from training (rare; long lines are
            still trained up to this width).
        stride: model frames per pixel column; samples whose label cannot fit the frames are dropped.
    """

    chunk_size: int = 512
    batch_size: int = 64
    max_batch_pixels: int = 64 * 400
    max_width: int = 1200
    stride: int = 4


class BatchMaker:
    """Builds chunk ``k`` of a training stream; picklable, so DataLoader workers can run it."""

    def __init__(self, sources: Sequence[LineSource], weights: Sequence[float], charset: Charset,
                 preprocess: PreprocessConfig, plan: BatchPlan, seed: int, on_unknown: OnUnknown = "skip",
                 rank: int = 0, world: int = 1) -> None:
        if not sources or len(sources) != len(weights):
            raise ValueError("need one weight per source and at least one source")
        w = np.asarray(weights, dtype=np.float64)
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"source weights must be >= 0 with a positive sum, got {list(weights)}")
        self.sources = list(sources)
        self.cum = np.cumsum(w / w.sum())
        self.charset = charset
        self.preprocess = preprocess
        self.plan = plan
        self.seed = seed
        self.on_unknown: OnUnknown = on_unknown
        self.rank, self.world = rank, world

    def sample_index(self, k: int, j: int) -> tuple[int, int]:
        """Source and item index of sample ``j`` of global chunk ``k`` (distinct per rank)."""
        n = (k * self.world + self.rank) * self.plan.chunk_size + j
        rng = np.random.default_rng((self.seed, n))
        src = int(np.searchsorted(self.cum, rng.random(), side="right"))
        src = min(src, len(self.sources) - 1)
        source = self.sources[src]
        size = len(source) if hasattr(source, "__len__") else 0
        return src, (n if size == 0 or size >= 2**62 else int(rng.integers(size)))

    def _sample(self, k: int, j: int) -> tuple[np.ndarray, list[int], str] | None:
        src, idx = self.sample_index(k, j)
        img, raw = self.sources[src][idx]
        text = self.charset.prepare(raw, self.on_unknown)
        if not text:
            return None
        line = prepare_line(img, self.preprocess)
        labels = self.charset.encode(text)
        repeats = sum(a == b for a, b in zip(labels, labels[1:], strict=False))
        if line.shape[1] > self.plan.max_width or line.shape[1] // self.plan.stride < len(labels) + repeats:
            return None
        return line, labels, text

    def chunk(self, k: int) -> list[Batch]:
        """The batches of chunk ``k``, in a deterministic shuffled order."""
        samples = [s for j in range(self.plan.chunk_size) if (s := self._sample(k, j)) is not None]
        if not samples:
            return []
        widths = [s[0].shape[1] for s in samples]
        groups = width_buckets(widths, self.plan.batch_size, self.plan.max_batch_pixels)
        order = np.random.default_rng((self.seed, k, self.rank, 7)).permutation(len(groups))
        return [self._batch([samples[i] for i in groups[g]]) for g in order]

    def _batch(self, items: list[tuple[np.ndarray, list[int], str]]) -> Batch:
        images, widths = pad_batch([it[0] for it in items], self.preprocess)
        targets = np.fromiter((c for it in items for c in it[1]), dtype=np.int64)
        lengths = np.array([len(it[1]) for it in items], dtype=np.int64)
        return Batch(images, targets, lengths, widths, tuple(it[2] for it in items))
