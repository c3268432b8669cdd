"""DB detector checkpoint -> ONNX with dynamic page size, ``crnn_ocr.det`` metadata and a parity check.

The graph maps ``(N, 3, H, W)`` float32 pages (H, W multiples of 32) to ``(N, 1, H, W)`` text
probabilities, the contract :class:`crnn_ocr.detect.db.DBDetector` runs. The input convention (channels,
mean, std) goes into metadata under ``crnn_ocr.det`` exactly as the detector reads it, so the engine never
guesses the normalisation; ``crnn_ocr.det_info`` records the architecture and training step.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crnn_ocr.models.dbnet import DBNet

INPUT_NAME = "image"
OUTPUT_NAME = "prob"
MIN_OPSET = 17
META_KEY = "crnn_ocr.det"  # the key crnn_ocr.detect.db reads
INFO_KEY = "crnn_ocr.det_info"
PARITY_SIZES = ((64, 96), (320, 224), (640, 480))
"""Input sizes ``(H, W)`` of the parity check: tiny, portrait, landscape."""


@dataclass
class DetExportReport:
    """What an export produced and how closely ONNX Runtime matches PyTorch."""

    path: str
    opset: int
    size_bytes: int
    ema: bool
    parity_max_abs_diff: float
    parity_sizes: list[tuple[int, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def det_props(spec: dict[str, Any], info: dict[str, Any]) -> dict[str, str]:
    """The metadata entries: the input spec (channels, mean, std) and a description of the model."""
    return {META_KEY: json.dumps({"channels": int(spec["channels"]), "mean": [float(v) for v in spec["mean"]],
                                  "std": [float(v) for v in spec["std"]]}),
            INFO_KEY: json.dumps(info, ensure_ascii=False)}


def to_onnx_proto(model: DBNet, props: dict[str, str], opset: int = MIN_OPSET) -> Any:
    """Trace the eval-mode model into an ``onnx.ModelProto`` with dynamic batch, height and width."""
    import onnx

    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET}, got {opset}")
    model = model.float().eval()
    dummy = torch.zeros(1, model.cfg.in_channels, 128, 160)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (dummy,), buf, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                                        OUTPUT_NAME: {0: "batch", 2: "height", 3: "width"}},
                          opset_version=opset, do_constant_folding=True, dynamo=False)
    proto = onnx.load_from_string(buf.getvalue())
    proto.producer_name = "crnn-ocr"
    proto.doc_string = "crnn-ocr DB text detector: (N,C,H,W) page -> (N,1,H,W) text probability"
    for k, v in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(proto, full_check=True)
    return proto


def parity(onnx_path: str | Path, model: DBNet, sizes: tuple[tuple[int, int], ...] = PARITY_SIZES,
           seed: int = 0) -> float:
    """Largest absolute probability difference, ORT vs PyTorch, on random pages of several sizes."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    worst = 0.0
    model = model.float().eval()
    for h, w in sizes:
        x = rng.uniform(-1, 1, size=(1, model.cfg.in_channels, h, w)).astype(np.float32)
        got = sess.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
        with torch.inference_mode():
            want = model(torch.from_numpy(x)).numpy()
        if got.shape != want.shape:
            raise AssertionError(f"ONNX output shape {got.shape} != torch {want.shape} at {h}x{w}")
        worst = max(worst, float(np.abs(got - want).max()))
    return worst


def export_det_checkpoint(ckpt_path: str | Path, out: str | Path, use_ema: bool = True, opset: int = MIN_OPSET,
                          tolerance: float = 1e-3) -> DetExportReport:
    """Export a detector training checkpoint to ``out`` and verify it against PyTorch.

    >>> export_det_checkpoint("runs/dbnet_lite/best.pt", "det.onnx").parity_max_abs_diff  # doctest: +SKIP
    """
    import onnx

    from crnn_ocr.train.det_loop import load_det_checkpoint, model_from_det_checkpoint

    ckpt = load_det_checkpoint(ckpt_path)
    ema = bool(use_ema and ckpt.get("ema") is not None)
    model = model_from_det_checkpoint(ckpt, use_ema=ema)
    info = {"name": ckpt["model_name"], "step": int(ckpt.get("step", 0)), "weights": "ema" if ema else "raw",
            "source": Path(ckpt_path).name, "config": ckpt["model_config"]}
    proto = to_onnx_proto(model, det_props(ckpt["input_spec"], info), opset=opset)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(out))
    diff = parity(out, model)
    if not diff <= tolerance:
        raise AssertionError(f"ONNX Runtime differs from PyTorch by {diff:.2e} (> {tolerance:.0e}) in {out}")
    return DetExportReport(str(out), opset, out.stat().st_size, ema, diff, [tuple(s) for s in PARITY_SIZES])
