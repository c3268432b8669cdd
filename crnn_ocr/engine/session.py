"""ONNX Runtime session for a recognition model: the "run" step between pre- and postprocessing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from crnn_ocr.meta import ModelMeta


class Backend(Protocol):
    """Anything that maps a ``(N, 1, H, W)`` float32 batch to ``(N, T, C)`` class probabilities."""

    meta: ModelMeta

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities per frame."""
        ...


def physical_cores() -> int:
    """Physical core count (hyper-threads excluded where the OS tells), at least 1."""
    try:
        import psutil  # type: ignore[import-not-found]

        n = psutil.cpu_count(logical=False)
        if n:
            return int(n)
    except ImportError:
        pass
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def default_threads() -> int:
    """Threads for one session: ``CRNN_OCR_THREADS`` if set, else the physical core count."""
    env = os.environ.get("CRNN_OCR_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"CRNN_OCR_THREADS must be an integer, got {env!r}") from None
    return physical_cores()


class OrtBackend:
    """An ONNX Runtime session over a self-describing crnn-ocr model file.

    One session per model, created once; ``InferenceSession.run`` is safe to call from several threads.
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {path}")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or default_threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Every batch has its own width: memory patterns are planned (and cached) per input shape, so with
        # them on, memory grows with each new width seen. The arena still recycles buffers between calls.
        opts.enable_mem_pattern = False
        self.path = path
        self.threads = opts.intra_op_num_threads
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        props = dict(self.session.get_modelmeta().custom_metadata_map)
        self.meta = ModelMeta.from_props(props)
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, T, C)`` for a preprocessed batch."""
        return self.session.run([self.output_name], {self.input_name: batch})[0]
