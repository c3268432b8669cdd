"""``crnn-ocr bench train``: training images/s and eager inference lines/s per architecture.

Measured on a fixed random batch (no data loading), so the figure is the model's own cost on this CPU.
"""

from __future__ import annotations

import platform
import time
from typing import Any

import numpy as np
import torch

from crnn_ocr.charset import default_charset
from crnn_ocr.data.batches import Batch
from crnn_ocr.models.registry import create_model
from crnn_ocr.train.loop import autocast, ctc_loss, param_groups, resolve_amp, sample_classes
from crnn_ocr.train.run import optimizer_step


def bench_model(name: str, batch: int = 64, width: int = 320, steps: int = 5, label_len: int = 15,
                threads: int | None = None, sampled_classes: int = 0, amp: str = "none") -> dict[str, Any]:
    """Median train step and inference time of ``name`` on a random ``batch x 32 x width`` batch.

    Labels are drawn from a Zipf-like distribution over the charset, as text is: how many distinct
    characters a batch holds decides the size of a sampled-softmax step (``sampled_classes``). ``amp``
    is the trainer's setting (:func:`~crnn_ocr.train.loop.resolve_amp`); inference is timed in fp32.
    """
    precision = resolve_amp(amp, torch.device("cpu"))
    if threads:
        torch.set_num_threads(threads)
    classes = default_charset().num_classes
    torch.manual_seed(0)
    model = create_model(name, num_classes=classes).to(memory_format=torch.channels_last)  # as the trainer
    opt = torch.optim.AdamW(param_groups(model, 0.01), lr=1e-4, fused=True)
    x = torch.randn(batch, 1, model.cfg.height, width)
    gen = torch.Generator().manual_seed(0)
    zipf = 1.0 / torch.arange(1, classes)
    targets = torch.multinomial(zipf, batch * label_len, replacement=True, generator=gen) + 1
    # the trainer's own loss: same masking, dtype and sampled-softmax path
    b = Batch(x.numpy(), targets.numpy(), np.full(batch, label_len), np.full(batch, width), ("",) * batch)
    frames = model.frames(width)
    times = []
    model.train()
    for i in range(steps + 1):
        t0 = time.perf_counter()
        s = sample_classes(b.targets, classes, sampled_classes, 0, i) if sampled_classes else None
        with autocast(precision, torch.device("cpu")):
            loss = ctc_loss(model(x, None if s is None else s.classes), b, model.cfg.width_stride, s)
        optimizer_step(loss, model, opt, grad_clip=0.0, ema=None, step=i)
        if i:  # the first step warms up allocators and kernels
            times.append(time.perf_counter() - t0)
    model.eval()
    infer = []
    with torch.inference_mode():
        for _ in range(3):
            t0 = time.perf_counter()
            model(x)
            infer.append(time.perf_counter() - t0)
    step = sorted(times)[len(times) // 2]
    return {
        "model": name, "params": sum(p.numel() for p in model.parameters()), "batch": batch, "width": width,
        "frames": frames, "train_img_s": round(batch / step, 1), "train_step_s": round(step, 3),
        "infer_lines_s": round(batch / min(infer), 1), "threads": torch.get_num_threads(),
        "sampled_classes": sampled_classes, "amp": amp, "precision": precision,
    }


def environment() -> dict[str, Any]:
    """What the figures were measured on."""
    return {"torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
            "capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads()}
