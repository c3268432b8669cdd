"""A PyTorch model as a :class:`crnn_ocr.engine.session.Backend`, so eval runs checkpoints and ONNX alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from crnn_ocr.meta import ModelMeta
from crnn_ocr.models.crnn import CRNN
from crnn_ocr.train.checkpoint import load_checkpoint, meta_of, model_from_checkpoint


class TorchBackend:
    """Runs a CRNN in eval mode and returns softmax probabilities like the ONNX graph does."""

    def __init__(self, model: CRNN, meta: ModelMeta, device: str = "cpu") -> None:
        self.model = model
        self.meta = meta
        self.device = torch.device(device)

    @classmethod
    def from_checkpoint(cls, path: str | Path, threads: int | None = None, use_ema: bool = True) -> TorchBackend:
        """Load a checkpoint written by the trainer."""
        if threads:
            torch.set_num_threads(threads)
        ckpt = load_checkpoint(path)
        return cls(model_from_checkpoint(ckpt, use_ema), meta_of(ckpt))

    @torch.inference_mode()
    def run(self, batch: np.ndarray) -> np.ndarray:
        """``(N, 1, H, W)`` -> ``(N, T, C)`` probabilities."""
        was_training = self.model.training
        self.model.eval()
        try:
            x = torch.from_numpy(batch).to(self.device)
            return self.model(x).float().softmax(-1).cpu().numpy()
        finally:
            self.model.train(was_training)
