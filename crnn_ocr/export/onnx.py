"""PyTorch checkpoint -> self-describing ONNX: softmax inside, dynamic batch and width, metadata, parity.

The graph maps ``(N, 1, H, W)`` float32 to class probabilities ``(N, T, C)`` (the engine's ``Backend``
contract), so the engine needs neither torch nor a softmax of its own. Everything the engine must know
(charset, preprocessing, name, version, training summary) goes into ``metadata_props``.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from crnn_ocr.meta import ModelMeta
from crnn_ocr.models.crnn import CRNN
from crnn_ocr.train.checkpoint import load_checkpoint, meta_of, model_from_checkpoint

INPUT_NAME = "image"
OUTPUT_NAME = "probs"
MIN_OPSET = 17
PARITY_WIDTHS = (32, 57, 128, 331, 800, 1603)
"""Input widths of the parity check: narrow, odd, typical and very wide lines."""


class ProbsHead(nn.Module):
    """The model followed by a softmax over classes: what the exported graph computes."""

    def __init__(self, model: CRNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, H, W)`` -> probabilities ``(N, T, C)``."""
        return self.model(x).softmax(-1)


@dataclass
class ExportReport:
    """What an export produced and how closely ONNX Runtime matches PyTorch."""

    path: str
    opset: int
    size_bytes: int
    ema: bool
    parity_max_abs_diff: float
    parity_argmax_agreement: float
    parity_widths: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def set_metadata(model: Any, meta: ModelMeta) -> None:
    """Replace the crnn-ocr entries of an ``onnx.ModelProto``'s ``metadata_props`` with ``meta``."""
    props = meta.to_props()
    keep = [(p.key, p.value) for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    for k, v in [*keep, *props.items()]:
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v


def read_metadata(model: Any) -> ModelMeta:
    """The :class:`ModelMeta` stored in an ``onnx.ModelProto``."""
    return ModelMeta.from_props({p.key: p.value for p in model.metadata_props})


def to_onnx_proto(model: CRNN, meta: ModelMeta, opset: int = MIN_OPSET, simplify: bool = True) -> Any:
    """Trace ``model`` (eval mode, fp32) into an ``onnx.ModelProto`` with ``meta`` in its metadata.

    Uses the TorchScript exporter: it maps ``nn.LSTM`` onto the native ONNX ``LSTM`` operator, which ONNX
    Runtime runs as one fused kernel (and which dynamic quantisation knows how to handle).
    """
    import onnx

    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET}, got {opset}")
    model = model.float().eval()
    height = meta.preprocess.height
    dummy = torch.zeros(2, 1, height, 96)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy-exporter deprecation and LSTM batch-size notes
        torch.onnx.export(
            ProbsHead(model), (dummy,), buf, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch", 3: "width"}, OUTPUT_NAME: {0: "batch", 1: "frames"}},
            opset_version=opset, do_constant_folding=True, dynamo=False,
        )
    proto = onnx.load_from_string(buf.getvalue())
    if simplify:
        import onnxslim

        proto = onnxslim.slim(proto)
    proto.producer_name = "crnn-ocr"
    proto.doc_string = f"crnn-ocr recogniser {meta.name} {meta.version}: (N,1,{height},W) -> softmax (N,T,C)"
    set_metadata(proto, meta)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def parity(onnx_path: str | Path, model: CRNN, height: int, widths: tuple[int, ...] = PARITY_WIDTHS,
           batch: int = 2, seed: int = 0) -> tuple[float, float]:
    """Max abs difference of probabilities and frame argmax agreement, ORT vs PyTorch, on random inputs.

    Each width is run as its own batch so dynamic width and batch axes are both exercised.
    """
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    worst, agree, total = 0.0, 0, 0
    model = model.float().eval()
    for i, w in enumerate(widths):
        x = rng.uniform(-1, 1, size=(batch + i % 2, 1, height, w)).astype(np.float32)
        got = sess.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
        with torch.inference_mode():
            want = model(torch.from_numpy(x)).softmax(-1).numpy()
        if got.shape != want.shape:
            raise AssertionError(f"ONNX output shape {got.shape} != torch {want.shape} at width {w}")
        worst = max(worst, float(np.abs(got - want).max()))
        agree += int((got.argmax(-1) == want.argmax(-1)).sum())
        total += got.shape[0] * got.shape[1]
    return worst, agree / max(total, 1)


def export_checkpoint(ckpt_path: str | Path, out: str | Path, use_ema: bool = True, opset: int = MIN_OPSET,
                      simplify: bool = True, tolerance: float = 1e-3, edge_margin: float | None = None,
                      ) -> ExportReport:
    """Export a training checkpoint to ``out`` and verify it against PyTorch.

    Args:
        ckpt_path: checkpoint written by the trainer.
        out: the ``.onnx`` file to write.
        use_ema: export the EMA weights when the checkpoint has them.
        opset: ONNX opset (>= 17).
        simplify: run onnxslim over the graph.
        tolerance: largest accepted max-abs difference of probabilities; above it the export fails.
        edge_margin: the model's inference margin (``PreprocessConfig.edge_margin``) to write into its
            metadata; ``None`` keeps the checkpoint's.

    Returns:
        sizes and parity figures.

    >>> export_checkpoint("runs/crnn_lite/best.pt", "crnn_lite.onnx").parity_max_abs_diff  # doctest: +SKIP
    """
    import onnx

    ckpt = load_checkpoint(ckpt_path)
    ema = bool(use_ema and ckpt.get("ema") is not None)
    model = model_from_checkpoint(ckpt, use_ema=ema)
    meta = meta_of(ckpt)
    if edge_margin is not None:
        meta = replace(meta, preprocess=replace(meta.preprocess, edge_margin=float(edge_margin)))
    meta = replace(meta, extra={**meta.extra, "weights": "ema" if ema else "raw", "opset": opset,
                                "source": Path(ckpt_path).name})
    proto = to_onnx_proto(model, meta, opset=opset, simplify=simplify)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(out))
    diff, agree = parity(out, model, meta.preprocess.height)
    if not diff <= tolerance:
        raise AssertionError(f"ONNX Runtime differs from PyTorch by {diff:.2e} (> {tolerance:.0e}) in {out}")
    return ExportReport(str(out), opset, out.stat().st_size, ema, diff, agree, list(PARITY_WIDTHS))
