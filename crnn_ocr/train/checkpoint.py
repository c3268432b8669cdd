"""Checkpoints: written atomically, self-describing (config, model args, charset, preprocessing).

A checkpoint is a ``torch.save`` dict; ``compact`` storage halves it (fp16 weights, bf16 optimiser
moments) for the copy kept in the repository.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from crnn_ocr.charset import Charset
from crnn_ocr.meta import ModelMeta
from crnn_ocr.models.crnn import CRNN, CRNNConfig
from crnn_ocr.preprocess import PreprocessConfig


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temp file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _shrink(obj: Any, dtype: torch.dtype) -> Any:
    if isinstance(obj, torch.Tensor) and obj.is_floating_point():
        return obj.to(dtype)
    if isinstance(obj, dict):
        return {k: _shrink(v, dtype) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_shrink(v, dtype) for v in obj]
    return obj


def compact(ckpt: dict[str, Any]) -> dict[str, Any]:
    """A smaller copy: weights in fp16, optimiser state in bf16 (range matters more than precision there)."""
    out = dict(ckpt)
    for k in ("model", "ema"):
        if out.get(k) is not None:
            out[k] = _shrink(out[k], torch.float16)
    if out.get("optimizer") is not None:
        out["optimizer"] = _shrink(out["optimizer"], torch.bfloat16)
    out["compact"] = True
    return out


def as_fp32(state: dict[str, Any]) -> dict[str, Any]:
    """A state dict with floating tensors in fp32 (compact checkpoints store fp16/bf16); others copied."""
    return {k: v.float() if v.is_floating_point() else v.clone() for k, v in state.items()}


def device_seconds(ckpt: dict[str, Any]) -> dict[str, float]:
    """Trainer wall time per device type; checkpoints written before it was recorded ran on the CPU."""
    return dict(ckpt.get("device_seconds") or {"cpu": float(ckpt.get("train_seconds", 0.0))})


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint (on CPU) and check that it carries what a model needs."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    for key in ("model", "model_config", "model_name", "charset", "preprocess"):
        if key not in ckpt:
            raise ValueError(f"{path} is not a crnn-ocr checkpoint (missing {key!r})")
    return ckpt


def meta_of(ckpt: dict[str, Any]) -> ModelMeta:
    """The model self-description stored in a checkpoint."""
    return ModelMeta(
        name=ckpt["model_name"],
        charset=Charset.from_text(ckpt["charset"]),
        preprocess=PreprocessConfig.from_json(ckpt["preprocess"]),
        version=f"step{ckpt.get('step', 0)}",
        extra={"samples_seen": int(ckpt.get("samples_seen", 0)), "step": int(ckpt.get("step", 0)),
               "train_hours": round(float(ckpt.get("train_seconds", 0.0)) / 3600, 2),
               "data": ckpt.get("data_summary", "")},
    )


def model_from_checkpoint(ckpt: dict[str, Any], use_ema: bool = True) -> CRNN:
    """Rebuild the model (EMA weights when present and asked for) in fp32 eval mode."""
    model = CRNN(CRNNConfig.from_dict(ckpt["model_config"]))
    state = ckpt["ema"] if use_ema and ckpt.get("ema") is not None else ckpt["model"]
    model.load_state_dict(as_fp32(state))
    return model.eval()
