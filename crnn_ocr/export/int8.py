"""INT8 quantisation of an exported recogniser: static QDQ (calibrated) or dynamic, with a fp32 comparison.

Calibration lines come from the synthetic stream (plus optional ``labels.tsv`` folders) and go through
``preprocess.prepare_line`` + ``pad_batch`` with the model's own :class:`PreprocessConfig` read from its
metadata, so the quantiser sees exactly what the engine feeds. Modes:

- ``static``: QDQ, per-channel INT8 weights and calibrated INT8 activations for convolutions and the
  linear layers; the LSTM stays fp32 (ONNX Runtime has no QDQ LSTM kernel).
- ``dynamic``: INT8 weights of the LSTM and MatMuls, activations quantised on the fly; convolutions fp32.
- ``hybrid``: ``static``, then the LSTM weights dynamically quantised as well.

``dynamic`` is the default: on a crnn_lite checkpoint (AVX2 CPU without VNNI, 1 thread) it ran 1.4x faster
than fp32 with a 3.5 MB file, while ``static`` was slower than fp32 (QLinearConv gains nothing there and the
extra Quantize/Dequantize nodes cost) at no better agreement. Re-measure with ``crnn-ocr quantize --mode``.

Weights use a 7-bit range (``reduce_range``): on x86 CPUs without VNNI the u8 x s8 kernels add pairs of
products in 16 bits, which saturate with full-range weights and flip frame argmaxes (on a random conv
recogniser: 84% frame agreement with fp32 at 8 bits, 98.5% at 7 bits).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crnn_ocr.meta import ModelMeta
from crnn_ocr.preprocess import pad_batch, prepare_line, width_buckets

MODES = ("static", "dynamic", "hybrid")
DEFAULT_MODE = "dynamic"
STATIC_OPS = ["Conv", "MatMul", "Gemm"]
DYNAMIC_OPS = ["LSTM", "MatMul", "Gemm"]


def model_meta(path: str | Path) -> ModelMeta:
    """The crnn-ocr metadata of an ONNX file (without building a session)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return ModelMeta.from_props({p.key: p.value for p in proto.metadata_props})


def calibration_lines(meta: ModelMeta, count: int = 256, data: Sequence[str | Path] = (), seed: int = 20240601,
                      ) -> list[np.ndarray]:
    """Prepared lines for calibration: ``count`` synthetic lines plus every line of the ``data`` folders.

    Args:
        meta: the model's metadata (charset for the synthetic text, preprocessing for the lines).
        count: synthetic lines (a seed distinct from training's keeps them out of the training stream).
        data: ``labels.tsv`` folders whose images are added (labels are not needed).
        seed: seed of the synthetic stream.
    """
    lines: list[np.ndarray] = []
    if count > 0:
        from crnn_ocr.synth import SynthConfig, SynthStream

        stream = SynthStream(SynthConfig.load(None), charset=meta.charset, seed=seed)
        lines += [prepare_line(stream[i][0], meta.preprocess) for i in range(count)]
    if data:
        from crnn_ocr.data.labels import read_labels_tsv

        for folder in data:
            lines += [prepare_line(item.path, meta.preprocess) for item in read_labels_tsv(folder)]
    if not lines:
        raise ValueError("no calibration lines: ask for synthetic lines (--calib) or give --data folders")
    return lines


def padded_batches(lines: Sequence[np.ndarray], meta: ModelMeta, batch_size: int = 16) -> list[np.ndarray]:
    """Width-bucketed, padded ``(N, 1, H, W)`` batches, as the engine builds them."""
    groups = width_buckets([ln.shape[1] for ln in lines], batch_size)
    return [pad_batch([lines[i] for i in g], meta.preprocess)[0] for g in groups]


class _Reader:
    """ONNX Runtime ``CalibrationDataReader`` over pre-built batches."""

    def __init__(self, input_name: str, batches: Sequence[np.ndarray]) -> None:
        self.input_name = input_name
        self.batches = list(batches)
        self._it: Iterator[np.ndarray] = iter(self.batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._it, None)
        return None if batch is None else {self.input_name: batch}

    def rewind(self) -> None:
        self._it = iter(self.batches)


def _copy_metadata(src: str | Path, dst: str | Path) -> None:
    """Carry ``metadata_props`` (and producer/doc) from ``src`` over to ``dst``; quantisers drop some."""
    import onnx

    from crnn_ocr.export.onnx import set_metadata

    a = onnx.load(str(src))
    b = onnx.load(str(dst))
    meta = ModelMeta.from_props({p.key: p.value for p in a.metadata_props})
    set_metadata(b, meta)
    b.producer_name, b.doc_string = a.producer_name, a.doc_string
    onnx.save(b, str(dst))


def _input_name(path: str | Path) -> str:
    import onnx

    return onnx.load(str(path), load_external_data=False).graph.input[0].name


def quantize(src: str | Path, dst: str | Path, mode: str = DEFAULT_MODE, lines: Sequence[np.ndarray] | None = None,
             calib: int = 256, data: Sequence[str | Path] = (), batch_size: int = 16) -> Path:
    """Quantise the fp32 model ``src`` to INT8 ``dst``; the metadata is carried over.

    Args:
        src: fp32 ONNX exported by :mod:`crnn_ocr.export.onnx`.
        dst: output file.
        mode: ``static`` | ``dynamic`` | ``hybrid`` (see the module docstring); only ``static`` and
            ``hybrid`` calibrate.
        lines: prepared calibration lines; by default :func:`calibration_lines` with ``calib``/``data``.
        calib: synthetic calibration lines when ``lines`` is not given.
        data: ``labels.tsv`` folders added to the calibration set.
        batch_size: lines per calibration batch.

    >>> quantize("crnn_lite.onnx", "crnn_lite.int8.onnx", calib=256)  # doctest: +SKIP
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="crnn-ocr-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=False)
        if mode == "dynamic":
            quantize_dynamic(pre, dst, op_types_to_quantize=DYNAMIC_OPS, per_channel=True, reduce_range=True,
                             weight_type=QuantType.QInt8)
        else:
            meta = model_meta(src)
            if lines is None:
                lines = calibration_lines(meta, calib, data)
            reader = _Reader(_input_name(pre), padded_batches(lines, meta, batch_size))
            static_out = dst if mode == "static" else Path(tmp) / "static.onnx"
            quantize_static(pre, static_out, reader, quant_format=QuantFormat.QDQ, op_types_to_quantize=STATIC_OPS,
                            per_channel=True, reduce_range=True, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax,
                            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
            if mode == "hybrid":
                quantize_dynamic(static_out, dst, op_types_to_quantize=["LSTM"], per_channel=True, reduce_range=True,
                                 weight_type=QuantType.QInt8)
    _copy_metadata(src, dst)
    return dst


@dataclass
class Comparison:
    """A quantised model against its fp32 source on the same prepared lines and threads."""

    lines: int
    text_agreement: float
    frame_agreement: float
    fp32_ms_per_line: float
    int8_ms_per_line: float
    fp32_bytes: int
    int8_bytes: int

    @property
    def speedup(self) -> float:
        """fp32 time over int8 time (> 1: int8 is faster)."""
        return self.fp32_ms_per_line / max(self.int8_ms_per_line, 1e-9)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form with the speed-up."""
        return {**asdict(self), "speedup": round(self.speedup, 3)}


def _timed_probs(path: str | Path, batches: Sequence[np.ndarray], threads: int, repeats: int,
                 ) -> tuple[list[np.ndarray], float]:
    from crnn_ocr.engine.session import OrtBackend

    backend = OrtBackend(path, threads)
    outs = [backend.run(b) for b in batches]  # also the warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for b in batches:
            backend.run(b)
        best = min(best, time.perf_counter() - t0)
    return outs, best


def compare(fp32: str | Path, int8: str | Path, lines: Sequence[np.ndarray], threads: int = 1,
            batch_size: int = 16, repeats: int = 3) -> Comparison:
    """Decoded-text and per-frame argmax agreement, and batched speed (best of ``repeats``), int8 vs fp32."""
    from crnn_ocr.ctc import greedy_decode_batch

    meta = model_meta(fp32)
    groups = width_buckets([ln.shape[1] for ln in lines], batch_size)
    padded = [pad_batch([lines[i] for i in g], meta.preprocess) for g in groups]
    batches = [b for b, _ in padded]
    ref, t_ref = _timed_probs(fp32, batches, threads, repeats)
    got, t_got = _timed_probs(int8, batches, threads, repeats)
    same_text = same_frames = frames = 0
    for (batch, widths), a, b in zip(padded, ref, got, strict=True):
        stride = batch.shape[3] / a.shape[1]
        lengths = np.ceil(widths / stride).astype(np.int64)
        for i, (da, db) in enumerate(zip(greedy_decode_batch(a, lengths), greedy_decode_batch(b, lengths),
                                         strict=True)):
            same_text += da.labels == db.labels
            n = int(lengths[i])
            same_frames += int((a[i, :n].argmax(-1) == b[i, :n].argmax(-1)).sum())
            frames += n
    n = len(lines)
    return Comparison(n, same_text / n, same_frames / max(frames, 1), 1000 * t_ref / n, 1000 * t_got / n,
                      Path(fp32).stat().st_size, Path(int8).stat().st_size)
