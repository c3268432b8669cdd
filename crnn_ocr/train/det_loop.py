"""DB detector training: ``train_det(cfg)``, resumable exactly like the recogniser's loop.

Sample ``k`` of the run is page ``k`` of the :class:`~crnn_ocr.synth.page.PageStream` (seeded with
``cfg.seed``), randomly scaled and cropped to ``cfg.crop`` with an rng seeded by ``(seed, k)``, so the data
position is just the number of samples seen. State that makes resuming exact: model, optimiser, EMA,
step, samples seen and the torch / NumPy / Python RNG states, written atomically to ``last.pt``; SIGTERM
and Ctrl-C save first. Validation runs the same pre- and post-processing as
:class:`~crnn_ocr.detect.db.DBDetector` on a fixed set of synthetic pages and scores it with
:mod:`crnn_ocr.detect.metrics`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from crnn_ocr.detect.db import DBConfig, InputSpec, boxes_from_map, input_size, preprocess
from crnn_ocr.detect.db_targets import db_targets
from crnn_ocr.detect.metrics import PageCounts, TrueLine, score_page
from crnn_ocr.models.dbnet import DBNet, DBNetConfig, create_dbnet, db_loss
from crnn_ocr.synth.page import PageConfig, PageStream
from crnn_ocr.train.checkpoint import as_fp32, atomic_save, device_seconds
from crnn_ocr.train.det_config import DetTrainConfig
from crnn_ocr.train.run import (
    BEST,
    EMA,
    LAST,
    EndlessSampler,
    StopSignal,
    append_csv,
    close_window,
    count_bad_step,
    ignore_signals,
    lr_at,
    optimizer_step,
    param_groups,
    restore_training_state,
    resume_run,
    rng_state,
    seed_all,
)

VAL_SEED_OFFSET = 99991
RUN_LIMITS = ("max_steps", "max_minutes", "threads", "workers", "device", "log_every", "val_every", "ckpt_every",
              "tensorboard")
"""Fields a resumed run takes from the new invocation (run limits and bookkeeping); the rest is saved."""


def input_spec(cfg: DetTrainConfig) -> InputSpec:
    """The model's input convention (also written into the ONNX metadata)."""
    return InputSpec(3, tuple(cfg.mean), tuple(cfg.std))


# ------------------------------------------------------------------------------------------------- data


def cut(arr: np.ndarray, x0: int, y0: int, size: int, fill: Any) -> np.ndarray:
    """The ``size`` square of ``arr`` at ``(x0, y0)`` (may reach past the edges: filled with ``fill``)."""
    h, w = arr.shape[:2]
    out = np.empty((size, size, *arr.shape[2:]), arr.dtype)
    out[:] = fill
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + size, w), min(y0 + size, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = arr[sy0:sy1, sx0:sx1]
    return out


def random_crop(page: np.ndarray, quads: np.ndarray, rng: np.random.Generator, cfg: DetTrainConfig,
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Scale the page by a random factor, cut a ``cfg.crop`` square; returns it and its DB target maps.

    Targets are computed on the whole scaled page and cut like the image, so a line cut by the crop
    border keeps the kernel and threshold values it has on the page. Outside the page is background.
    """
    size = cfg.crop
    s = float(rng.uniform(*cfg.scale))
    h, w = page.shape[:2]
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    img = cv2.resize(page, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    q = quads.reshape(-1, 4, 2) * np.array([nw / w, nh / h], np.float32)
    x0 = int(rng.integers(0, nw - size + 1)) if nw > size else -int(rng.integers(0, size - nw + 1))
    y0 = int(rng.integers(0, nh - size + 1)) if nh > size else -int(rng.integers(0, size - nh + 1))
    lo, hi = q.min(axis=1), q.max(axis=1)
    near = (hi[:, 0] > x0 - size) & (lo[:, 0] < x0 + 2 * size) & (hi[:, 1] > y0 - size) & (lo[:, 1] < y0 + 2 * size)
    t = db_targets((nh, nw), list(q[near]), None, cfg.shrink_ratio, cfg.thresh_min, cfg.thresh_max, cfg.min_text)
    maps = {"prob": cut(t.prob, x0, y0, size, 0.0), "prob_mask": cut(t.prob_mask, x0, y0, size, 1.0),
            "thresh": cut(t.thresh, x0, y0, size, cfg.thresh_min), "thresh_mask": cut(t.thresh_mask, x0, y0, size, 0.0)}
    return cut(img, x0, y0, size, img.reshape(-1, 3).mean(axis=0).astype(np.uint8)), maps


def to_input(img: np.ndarray, spec: InputSpec) -> np.ndarray:
    """``(H, W, 3)`` uint8 BGR -> ``(3, H, W)`` float32, normalised as the detector does."""
    x = (img.astype(np.float32) / 255.0 - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


class DetDataset(torch.utils.data.Dataset):
    """Item ``k``: the crop of synthetic page ``k`` and its DB targets, as tensors."""

    def __init__(self, cfg: DetTrainConfig, stream: PageStream) -> None:
        self.cfg, self.stream, self.spec = cfg, stream, input_spec(cfg)

    def __len__(self) -> int:
        return 2**31 - 1

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        page, quads, _ = self.stream[k]
        rng = np.random.default_rng((cfg.seed, int(k), 1))
        img, maps = random_crop(page, quads, rng, cfg)
        return {"image": torch.from_numpy(to_input(img, self.spec)), **{k2: torch.from_numpy(v[None])
                                                                       for k2, v in maps.items()}}


def val_pages(cfg: DetTrainConfig) -> list[tuple[np.ndarray, list[TrueLine]]]:
    """The fixed synthetic validation pages (another seed than training) with their labels."""
    stream = PageStream(PageConfig.load(cfg.pages or None), seed=cfg.seed + VAL_SEED_OFFSET)
    out = []
    for i in range(cfg.val_pages):
        page, quads, texts = stream[i]
        out.append((page, [TrueLine(q, t) for q, t in zip(quads, texts, strict=True)]))
    return out


@torch.inference_mode()
def detect_torch(model: DBNet, page: np.ndarray, spec: InputSpec, det: DBConfig) -> list[np.ndarray]:
    """Quads of a page through the eval-mode model with DBDetector's exact pre- and post-processing."""
    h, w = page.shape[:2]
    x = preprocess(page, input_size(h, w, det), spec)
    prob = model(torch.from_numpy(x))[0, 0].numpy()
    return [ln.quad for ln in boxes_from_map(prob, det, (w / prob.shape[1], h / prob.shape[0]))]


def evaluate_det(model: DBNet, pages: list[tuple[np.ndarray, list[TrueLine]]], spec: InputSpec,
                 det: DBConfig | None = None) -> dict[str, float]:
    """Detection recall / precision / F1 (IoU 0.5, micro averages) on labelled pages."""
    det = det or DBConfig()
    was = model.training
    model.eval()
    total = PageCounts()
    try:
        for page, truth in pages:
            total = total + score_page(detect_torch(model, page, spec, det), None, truth)
    finally:
        model.train(was)
    return total.rates()


# ------------------------------------------------------------------------------------------ checkpoints


def load_det_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a detector checkpoint (on CPU) and check that it carries what a model needs."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    for key in ("model", "model_config", "model_name", "input_spec"):
        if key not in ckpt:
            raise ValueError(f"{path} is not a crnn-ocr detector checkpoint (missing {key!r})")
    return ckpt


def model_from_det_checkpoint(ckpt: dict[str, Any], use_ema: bool = True) -> DBNet:
    """Rebuild the detector (EMA weights when present and asked for) in fp32 eval mode."""
    model = DBNet(DBNetConfig.from_dict(ckpt["model_config"]))
    state = ckpt["ema"] if use_ema and ckpt.get("ema") is not None else ckpt["model"]
    model.load_state_dict(as_fp32(state))
    return model.eval()


def _save(path: Path, model: DBNet, ema: EMA | None, opt: torch.optim.Optimizer, st: dict[str, Any],
          cfg: DetTrainConfig) -> None:
    spec = input_spec(cfg)
    atomic_save({
        "kind": "dbnet",
        "model": model.state_dict(),
        "ema": ema.state if ema else None,
        "optimizer": opt.state_dict(),
        "model_name": cfg.model,
        "model_config": model.cfg.to_dict(),
        "config": cfg.to_dict(),
        "input_spec": {"channels": spec.channels, "mean": list(spec.mean), "std": list(spec.std)},
        **st,
        "rng": rng_state(),
    }, path)


# ----------------------------------------------------------------------------------------------- the run


def train_det(cfg: DetTrainConfig, resume: bool = False, log: Any = print) -> dict[str, Any]:
    """Train (or resume) a DB detector as ``cfg`` says; returns a summary of the run.

    Args:
        cfg: the run's configuration.
        resume: continue from ``out_dir/last.pt`` (model, optimiser, EMA, data position, RNG states).
        log: where progress lines go.
    """
    out = Path(cfg.out_dir)
    device = torch.device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cfg, ckpt = resume_run(cfg, resume, load_det_checkpoint, RUN_LIMITS, log)
    seed_all(cfg.seed)  # before the model exists: its initial weights come from this seed
    model = create_dbnet(cfg.model, **cfg.model_overrides) if ckpt is None else \
        DBNet(DBNetConfig.from_dict(ckpt["model_config"]))
    if ckpt is not None:
        model.load_state_dict(as_fp32(ckpt["model"]))
    model.to(device).train()
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr)
    ema = EMA(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    st: dict[str, Any] = {"step": 0, "samples_seen": 0, "train_seconds": 0.0, "best": -1.0}
    if ckpt is not None:
        restore_training_state(ckpt, opt, ema)
        st = {k: ckpt[k] for k in st}
        log(f"resumed at step {st['step']} ({st['samples_seen']:,} pages seen)")
    st["device_seconds"] = device_seconds(ckpt) if ckpt is not None else {}  # trainer time per device type
    stream = PageStream(PageConfig.load(cfg.pages or None), seed=cfg.seed)
    loader = torch.utils.data.DataLoader(
        DetDataset(cfg, stream), batch_size=cfg.batch_size, sampler=EndlessSampler(st["samples_seen"]),
        num_workers=cfg.workers, prefetch_factor=2 if cfg.workers else None, worker_init_fn=ignore_signals)
    pages = val_pages(cfg) if cfg.val_pages > 0 and cfg.val_every > 0 else []
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "log.csv"
    t_start = t_log = time.monotonic()
    sums: dict[str, float] = {}
    n_log = bad_in_row = 0
    reason = ""
    # Time spent waiting for the page workers: a high share means rendering is the bottleneck (add workers).
    wait, t_ready = 0.0, time.monotonic()
    with StopSignal() as stop:
        for batch in loader:
            wait += time.monotonic() - t_ready
            for g in opt.param_groups:
                g["lr"] = lr_at(st["step"], cfg)
            b = {k: v.to(device) for k, v in batch.items()}
            outs = model(b["image"])
            loss, parts = db_loss(outs, b["prob"], b["prob_mask"], b["thresh"], b["thresh_mask"])
            finite = optimizer_step(loss, model, opt, cfg.grad_clip, ema, st["step"])
            bad_in_row = count_bad_step(finite, bad_in_row)
            st["step"] += 1
            st["samples_seen"] += len(b["image"])
            if finite:
                for k, v in {"loss": float(loss.detach()), **parts}.items():
                    sums[k] = sums.get(k, 0.0) + v
                n_log += 1
            elapsed = time.monotonic() - t_start
            if st["step"] % cfg.log_every == 0:
                now = time.monotonic()
                st["train_seconds"] += now - t_log
                data_wait = close_window(st["device_seconds"], device.type, now - t_log, wait)
                means = {k: sums.get(k, float("nan")) / max(n_log, 1) for k in ("loss", "bce", "l1", "dice")}
                rate = n_log * cfg.batch_size / max(now - t_log, 1e-9)
                log(f"step {st['step']} pages {st['samples_seen']:,} loss {means['loss']:.4f} "
                    f"(bce {means['bce']:.3f} l1 {means['l1']:.3f} dice {means['dice']:.3f}) {rate:.2f} pages/s "
                    f"lr {lr_at(st['step'], cfg):.2e} data-wait {data_wait:.0%}")
                append_csv(csv_path, {"step": st["step"], "pages": st["samples_seen"],
                                      **{k: round(v, 4) for k, v in means.items()}, "pages_s": round(rate, 2)})
                sums, n_log, t_log, wait = {}, 0, now, 0.0
            if stop.flag:
                reason = "signal"
            elif cfg.max_steps and st["step"] >= cfg.max_steps:
                reason = "max_steps"
            elif cfg.max_minutes and elapsed >= cfg.max_minutes * 60:
                reason = "max_minutes"
            if pages and (st["step"] % cfg.val_every == 0 or reason):
                _validate(model, ema, pages, cfg, st, out, opt, log)
            if st["step"] % cfg.ckpt_every == 0 or reason:
                _save(out / LAST, model, ema, opt, st, cfg)
            if reason:
                break
            t_ready = time.monotonic()
    log(f"stopped ({reason}) at step {st['step']}, {st['samples_seen']:,} pages seen; saved {out / LAST}")
    return {"step": st["step"], "samples_seen": st["samples_seen"], "reason": reason,
            "checkpoint": str(out / LAST), "best": st["best"]}


def _validate(model: DBNet, ema: EMA | None, pages: list, cfg: DetTrainConfig, st: dict[str, Any], out: Path,
              opt: torch.optim.Optimizer, log: Any) -> dict[str, float]:
    eval_model = model
    if ema:
        eval_model = DBNet(model.cfg)
        eval_model.load_state_dict(ema.state)
    r = evaluate_det(eval_model, pages, input_spec(cfg), DBConfig(limit_side=cfg.val_limit_side))
    log(f"  val synth ({len(pages)} pages): recall {r['det_recall']:.3f} precision {r['det_precision']:.3f} "
        f"F1 {r['det_f1']:.3f}")
    append_csv(out / "val.csv", {"step": st["step"], "recall": round(r["det_recall"], 4),
                                 "precision": round(r["det_precision"], 4), "f1": round(r["det_f1"], 4)})
    if r["det_f1"] > st["best"]:
        st["best"] = r["det_f1"]
        _save(out / BEST, model, ema, opt, st, cfg)
    return r
