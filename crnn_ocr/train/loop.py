"""The training loop: one readable function, ``train(cfg)``, that resumes exactly where it stopped.

State that makes resuming exact: model, optimiser, EMA, step, samples seen, the data position
(chunk index and batches done in it; the data itself is a pure function of ``(seed, chunk)``) and the
torch / NumPy / Python RNG states. Checkpoints are written atomically; SIGTERM and Ctrl-C save one first.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from crnn_ocr.charset import Charset, default_charset
from crnn_ocr.data.batches import Batch, BatchMaker, BatchPlan, LineSource
from crnn_ocr.engine.recognizer import Recognizer
from crnn_ocr.evaluation import SetMetrics, score
from crnn_ocr.meta import ModelMeta
from crnn_ocr.models.crnn import CRNN, CRNNConfig
from crnn_ocr.models.registry import create_model
from crnn_ocr.preprocess import PreprocessConfig, prepare_line
from crnn_ocr.train.backend import TorchBackend
from crnn_ocr.train.checkpoint import as_fp32, atomic_save, device_seconds, load_checkpoint
from crnn_ocr.train.config import TrainConfig
from crnn_ocr.train.run import (
    BEST,
    EMA,
    LAST,
    EndlessSampler,
    StopSignal,
    append_csv,
    close_window,
    count_bad_step,
    extended_schedule,
    ignore_signals,
    lr_at,
    optimizer_step,
    param_groups,
    restore_training_state,
    resume_run,
    rng_state,
    seed_all,
)

RUN_LIMITS = ("max_steps", "max_minutes", "threads", "workers", "device", "log_every", "val_every", "ckpt_every",
              "val_sets", "tensorboard", "stages", "sources", "sampled_classes", "amp")
"""Fields a resumed run takes from the new invocation (run limits, bookkeeping, data mix, speed settings);
the rest is saved."""
AMP_MODES = ("none", "bf16", "fp16", "auto")


# ------------------------------------------------------------------------------------------- pure pieces


@dataclass(frozen=True)
class ClassSample:
    """The classifier rows one training step uses (see :func:`sample_classes`).

    Args:
        classes: sorted class ids; blank (0) and every class in the batch's labels are always in.
        offset: added to each row's logit so that the softmax over the sample estimates the full one.
        remap: class id -> position in ``classes`` (-1 when left out), to re-index the targets.
    """

    classes: torch.Tensor
    offset: torch.Tensor
    remap: torch.Tensor


def sample_classes(targets: np.ndarray, num_classes: int, k: int, seed: int, step: int) -> ClassSample:
    """Blank, the batch's own characters and uniformly drawn others, ``k`` rows in all.

    Training with ~7,000 classes spends much of each step on the classifier and its softmax, yet only a
    few hundred classes occur in a batch. The softmax is taken over this sample instead; the drawn
    negatives get a ``log(1/q)`` offset (``q``: their inclusion probability), which makes the sample's
    normaliser an unbiased estimate of the full one (sampled softmax), so logits stay calibrated for
    inference over every class. The draw depends only on ``(seed, step)``, so resuming stays exact;
    ``k >= num_classes`` gives exactly the full softmax.
    """
    keep = torch.zeros(num_classes, dtype=torch.bool)
    keep[0] = True
    keep[torch.from_numpy(np.asarray(targets, dtype=np.int64))] = True
    n_fixed = int(keep.sum())
    n_draw = max(0, min(k, num_classes) - n_fixed)
    offset = torch.zeros(num_classes)
    if n_draw:
        g = torch.Generator().manual_seed((seed * 1_000_003 + step) % (2**63))
        perm = torch.randperm(num_classes, generator=g)
        drawn = perm[~keep[perm]][:n_draw]
        keep[drawn] = True
        offset[drawn] = math.log((num_classes - n_fixed) / n_draw)
    classes = keep.nonzero().squeeze(1)
    remap = torch.full((num_classes,), -1, dtype=torch.long)
    remap[classes] = torch.arange(len(classes))
    return ClassSample(classes, offset[classes], remap)


def ctc_loss(logits: torch.Tensor, batch: Batch, stride: int, sample: ClassSample | None = None) -> torch.Tensor:
    """Mean CTC loss of a batch; frames past a line's true width are excluded.

    With ``sample``, ``logits`` cover only ``sample.classes`` (blank first) and targets are re-indexed.
    """
    logits = logits.float()
    targets = torch.from_numpy(batch.targets).long().to(logits.device)
    if sample is not None:
        logits = logits + sample.offset
        targets = sample.remap[targets]
    log_probs = logits.log_softmax(-1).transpose(0, 1)  # (T, N, C)
    t = log_probs.shape[0]
    in_len = torch.clamp(torch.from_numpy(-(-batch.widths // stride)), max=t)
    return F.ctc_loss(log_probs, targets, in_len, torch.from_numpy(batch.target_lengths),
                      blank=0, reduction="mean", zero_infinity=True)


def extend_head(model: CRNN, new_classes: int) -> CRNN:
    """Grow the classifier to ``new_classes`` rows, keeping existing rows.

    New rows start with zero weights and a bias far below every existing one, so the extended model's
    predictions on old characters are unchanged until fine-tuning teaches it the new ones.
    """
    old = model.head
    if new_classes <= old.out_features:
        return model
    head = nn.Linear(old.in_features, new_classes)
    with torch.no_grad():
        head.weight.zero_()
        head.weight[: old.out_features] = old.weight
        head.bias.fill_(float(old.bias.min()) - 20.0)
        head.bias[: old.out_features] = old.bias
    model.head = head
    model.cfg = CRNNConfig.from_dict({**model.cfg.to_dict(), "num_classes": new_classes})
    return model


# ------------------------------------------------------------------------------------------------- data


def build_sources(cfg: TrainConfig, charset: Charset) -> tuple[list[Any], list[float], str]:
    """The configured sources as indexable datasets, their weights and a one-line summary."""
    sources, weights, parts = [], [], []
    for s in cfg.sources:
        if s.kind == "synth":
            from crnn_ocr.synth import SynthConfig, SynthStream

            src: Any = SynthStream(SynthConfig.load(s.path or None), charset=charset, seed=cfg.seed)
        elif s.kind == "pages":
            from crnn_ocr.synth.page import PageConfig
            from crnn_ocr.synth.page_lines import PageLineStream

            src = PageLineStream(PageConfig.load(s.path or None), seed=cfg.seed, charset=charset)
        elif s.kind in ("tsv", "lmdb"):
            from crnn_ocr.data.labels import open_dataset

            src = open_dataset(s.path)
        else:
            raise ValueError(f"unknown source kind {s.kind!r} (synth, pages, tsv, lmdb)")
        sources.append(src)
        weights.append(s.weight)
        parts.append(f"{s.kind}:{Path(s.path).name if s.path else 'default'}x{s.weight:g}")
    return sources, weights, " + ".join(parts)


class ChunkDataset(torch.utils.data.Dataset):
    """Map-style dataset whose item ``k`` is the list of batches of chunk ``k`` (see BatchMaker)."""

    def __init__(self, cfg: TrainConfig, sources: list[Any], weights: list[float], charset: Charset,
                 preprocess: PreprocessConfig, stride: int, rank: int = 0, world: int = 1) -> None:
        self.cfg = cfg
        self.sources, self.weights = sources, weights
        self.charset, self.preprocess = charset, preprocess
        self.plan = BatchPlan(cfg.chunk_size, cfg.batch_size, cfg.max_batch_pixels, cfg.max_width, stride)
        self.rank, self.world = rank, world
        self._makers: dict[int, BatchMaker] = {}

    def __len__(self) -> int:
        return 2**31 - 1

    def _maker(self, k: int) -> BatchMaker:
        approx_step = k * self.cfg.chunk_size // max(1, self.cfg.batch_size)
        stage = self.cfg.stage_at(approx_step)
        key = self.cfg.stages.index(stage)
        if key not in self._makers:
            srcs: list[LineSource] = [
                s.with_overrides(max_chars=stage.max_chars, degrade=stage.degrade) if hasattr(s, "with_overrides")
                else s for s in self.sources
            ]
            self._makers[key] = BatchMaker(srcs, self.weights, self.charset, self.preprocess, self.plan,
                                           self.cfg.seed, self.cfg.on_unknown, self.rank, self.world)  # type: ignore[arg-type]
        return self._makers[key]

    def __getitem__(self, k: int) -> list[Batch]:
        return self._maker(k).chunk(k)


# ----------------------------------------------------------------------------------------------- the run


@dataclass
class RunState:
    """Counters that checkpoints carry."""

    step: int = 0
    samples_seen: int = 0
    chunk: int = 0
    batch_in_chunk: int = 0
    train_seconds: float = 0.0
    best: float = -1.0
    device_seconds: dict[str, float] = field(default_factory=dict)  # train_seconds split by device type


def _dist() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("CRNN_OCR_DDP_BACKEND") != "gloo" else "gloo"
        torch.distributed.init_process_group(backend)
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world


def _meta(model_name: str, charset: Charset, preprocess: PreprocessConfig) -> ModelMeta:
    return ModelMeta(model_name, charset, preprocess)


def _val_lines(cfg: TrainConfig, charset: Charset, preprocess: PreprocessConfig) -> dict[str, list]:
    """Validation sets as prepared lines + truths: a fixed synthetic set and any labelled folders."""
    sets: dict[str, list] = {}
    if cfg.val_synth > 0 and any(s.kind == "synth" for s in cfg.sources):
        from crnn_ocr.synth import SynthConfig, SynthStream

        synth_src = next(s for s in cfg.sources if s.kind == "synth")
        stream = SynthStream(SynthConfig.load(synth_src.path or None), charset=charset, seed=cfg.seed + 99991)
        last = max(cfg.stages, key=lambda s: s.start_step)
        stream = stream.with_overrides(max_chars=last.max_chars, degrade=last.degrade)
        items = [stream[i] for i in range(cfg.val_synth)]
        sets["synth"] = [(prepare_line(img, preprocess), txt) for img, txt in items]
    for path in cfg.val_sets:
        from crnn_ocr.data.labels import open_dataset

        ds = open_dataset(path)
        sets[Path(path).name] = [(prepare_line(ds[i][0], preprocess), ds[i][1]) for i in range(len(ds))]
    return sets


def validate(model: CRNN, meta: ModelMeta, sets: dict[str, list]) -> list[SetMetrics]:
    """Metrics of ``model`` on prepared validation sets, through the same Recognizer code as inference.

    The lexicon is off: the figures measure the model, and the synthetic words come from the same list.
    """
    device = next(model.parameters()).device
    rec = Recognizer(TorchBackend(model, meta, device=str(device)), batch_size=64, lexicon=None)
    out = []
    for name, items in sets.items():
        preds = rec.recognize_prepared([x for x, _ in items])
        out.append(score([(t, p.text) for (_, t), p in zip(items, preds, strict=True)], name))
    return out


def _save(path: Path, model: nn.Module, ema: EMA | None, opt: torch.optim.Optimizer, st: RunState,
          cfg: TrainConfig, charset: Charset, preprocess: PreprocessConfig, summary: str) -> None:
    raw = model.module if hasattr(model, "module") else model
    atomic_save({
        "model": raw.state_dict(),
        "ema": ema.state if ema else None,
        "optimizer": opt.state_dict(),
        "model_name": cfg.model,
        "model_config": raw.cfg.to_dict(),
        "config": cfg.to_dict(),
        "charset": charset.to_text(),
        "charset_sha256": charset.sha256,
        "preprocess": preprocess.to_json(),
        "data_summary": summary,
        "step": st.step, "samples_seen": st.samples_seen, "chunk": st.chunk,
        "batch_in_chunk": st.batch_in_chunk, "train_seconds": st.train_seconds, "best": st.best,
        "device_seconds": dict(st.device_seconds),
        "rng": rng_state(),
    }, path)


def _setup_model(cfg: TrainConfig, init: dict | None, extra_chars: str,
                 prefer_ema: bool = True) -> tuple[CRNN, Charset, PreprocessConfig]:
    if init is not None:
        charset = Charset.from_text(init["charset"])
        preprocess = PreprocessConfig.from_json(init["preprocess"])
        model = CRNN(CRNNConfig.from_dict(init["model_config"]))
        state = init["ema"] if prefer_ema and init.get("ema") is not None else init["model"]
        model.load_state_dict(as_fp32(state))
        if extra_chars:
            charset = charset.extend(extra_chars)
            extend_head(model, charset.num_classes)
        return model, charset, preprocess
    charset = Charset.load(cfg.charset) if cfg.charset else default_charset()
    if extra_chars:
        charset = charset.extend(extra_chars)
    model = create_model(cfg.model, num_classes=charset.num_classes, **cfg.model_overrides)
    return model, charset, PreprocessConfig(height=model.cfg.height)


def train(cfg: TrainConfig, resume: bool = False, init_from: str | None = None, extra_chars: str = "",
          log: Any = print, extend_schedule: int | None = None, anneal_to: float | None = None) -> dict[str, Any]:
    """Train (or resume) as ``cfg`` says; returns a summary of the run.

    Args:
        cfg: the run's configuration.
        resume: continue from ``out_dir/last.pt`` (model, optimiser, EMA, data position, RNG states).
        init_from: start from another checkpoint's weights (fine-tuning; fresh optimiser and counters).
        extra_chars: characters to add to the charset (the classifier grows, old rows are kept).
        log: where progress lines go.
        extend_schedule: stretch the resumed run's cosine to end at this step, keeping the current rate
            (:func:`extended_schedule`); saved with the run, so later resumes keep it.
        anneal_to: with ``extend_schedule``, a lower floor the rate decays to by that step (a cool-down).
    """
    if anneal_to is not None and extend_schedule is None:
        raise ValueError("a new floor lr (anneal_to) needs the step to reach it by (extend_schedule)")
    rank, world = _dist()
    try:
        summary = _train(cfg, rank, world, resume, init_from, extra_chars, log, extend_schedule, anneal_to)
    except BaseException:
        _leave_group(world, wait=False)
        raise
    _leave_group(world, wait=True)
    return summary


def _leave_group(world: int, wait: bool) -> None:
    """Tear the process group down before the interpreter exits.

    Left to the exit handlers, gloo's worker threads can be destroyed while still joinable, and the
    process aborts ("terminate called without an active exception") after a run that finished well. The
    barrier keeps a rank from leaving while another still saves; it is skipped when this rank failed,
    since the others may never reach it.
    """
    if world <= 1 or not torch.distributed.is_initialized():
        return
    if wait:
        torch.distributed.barrier()
    torch.distributed.destroy_process_group()


def _train(cfg: TrainConfig, rank: int, world: int, resume: bool, init_from: str | None, extra_chars: str,
           log: Any, extend_schedule: int | None, anneal_to: float | None) -> dict[str, Any]:
    """The body of :func:`train`, run inside its process group."""
    out = Path(cfg.out_dir)
    device = torch.device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cfg, ckpt = resume_run(cfg, resume, load_checkpoint, RUN_LIMITS, log)
    init = load_checkpoint(init_from) if init_from and ckpt is None else None
    seed_all(cfg.seed + rank)  # before the model exists: its initial weights come from this seed
    # Resuming continues the raw weights; fine-tuning starts from the (smoother) EMA weights.
    model, charset, preprocess = _setup_model(cfg, ckpt or init, extra_chars if ckpt is None else "",
                                              prefer_ema=ckpt is None)
    # Channels-last convolutions are ~10% faster on CPU (oneDNN) and the usual choice on GPUs.
    model.to(device, memory_format=torch.channels_last).train()
    # The fused kernel is an order of magnitude faster than the per-tensor loop on CPU.
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, fused=True)
    ema = EMA(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    st = RunState()
    if ckpt is not None:
        restore_training_state(ckpt, opt, ema)
        st = RunState(ckpt["step"], ckpt["samples_seen"], ckpt["chunk"], ckpt["batch_in_chunk"],
                      ckpt.get("train_seconds", 0.0), ckpt.get("best", -1.0),
                      device_seconds(ckpt))
        log(f"resumed at step {st.step} ({st.samples_seen:,} samples seen)")
    if extend_schedule is not None:
        if ckpt is None:
            raise ValueError("extending the schedule needs a run to resume (--resume with OUT_DIR/last.pt)")
        old = cfg
        cfg = extended_schedule(cfg, st.step, extend_schedule, anneal_to)
        log(f"schedule extended: cosine to step {old.schedule_steps:,} -> {cfg.schedule_steps:,}, peak lr "
            f"{old.lr:.3g} -> {cfg.lr:.3g}, floor {old.min_lr:.3g} -> {cfg.min_lr:.3g}; lr at step "
            f"{st.step:,} stays {lr_at(st.step, cfg):.3g}")
    stride = model.cfg.width_stride
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model)
    sources, weights, summary = build_sources(cfg, charset)
    if rank == 0:
        log(f"data: {summary}")
    data = ChunkDataset(cfg, sources, weights, charset, preprocess, stride, rank, world)
    loader = torch.utils.data.DataLoader(
        data, batch_size=None, sampler=EndlessSampler(st.chunk), num_workers=cfg.workers,
        prefetch_factor=2 if cfg.workers else None, persistent_workers=False, worker_init_fn=ignore_signals,
    )
    meta = _meta(cfg.model, charset, preprocess)
    val_sets = _val_lines(cfg, charset, preprocess) if rank == 0 else {}
    writer = _tensorboard(out) if rank == 0 and cfg.tensorboard else None
    csv_path = out / "log.csv"
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()
    t_log, n_log, loss_sum, steps_log = time.monotonic(), 0, 0.0, 0
    bad_in_row = skipped = 0
    skip = st.batch_in_chunk
    first_chunk = st.chunk
    stop_reason = ""
    precision = resolve_amp(cfg.amp, device)
    if rank == 0:
        log(f"precision: {'fp32' if precision == 'none' else precision + ' autocast'} (amp: {cfg.amp})")
    amp = autocast(precision, device)
    # Time spent waiting for the data workers: a high share means the workers are the bottleneck (add some);
    # a low share with a slow step means the model step is (on a GPU: try a bigger batch).
    wait, t_ready = 0.0, time.monotonic()
    with StopSignal() as stop:
        for k, batches in zip(range(st.chunk, 2**62), loader, strict=False):
            wait += time.monotonic() - t_ready
            for b_i, batch in enumerate(batches):
                if k == first_chunk and b_i < skip:
                    continue
                for g in opt.param_groups:
                    g["lr"] = lr_at(st.step, cfg)
                x = torch.from_numpy(batch.images).to(device)
                sample = None
                if cfg.sampled_classes:
                    sample = sample_classes(batch.targets, model.cfg.num_classes, cfg.sampled_classes,
                                            cfg.seed + rank, st.step)
                with amp:
                    logits = net(x, None if sample is None else sample.classes.to(device))
                loss = ctc_loss(logits, batch, stride, None if sample is None else _to(sample, device))
                finite = optimizer_step(loss, model, opt, cfg.grad_clip, ema, st.step)
                bad_in_row = count_bad_step(finite, bad_in_row)
                skipped += not finite
                st.step += 1
                st.samples_seen += len(batch.texts) * world
                st.chunk, st.batch_in_chunk = k, b_i + 1
                if finite:
                    loss_sum += float(loss.detach())
                    steps_log += 1
                n_log += len(batch.texts)
                elapsed = time.monotonic() - t_start
                if rank == 0 and st.step % cfg.log_every == 0:
                    now = time.monotonic()
                    rate = n_log * world / max(now - t_log, 1e-9)
                    mean_loss = loss_sum / max(1, steps_log)
                    st.train_seconds += now - t_log
                    data_wait = close_window(st.device_seconds, device.type, now - t_log, wait)
                    log(_progress_line(st, mean_loss, rate, lr_at(st.step, cfg), cfg, elapsed, data_wait)
                        + (f" skipped {skipped} non-finite" if skipped else ""))
                    append_csv(csv_path, {"step": st.step, "samples": st.samples_seen, "loss": round(mean_loss, 4),
                                          "img_s": round(rate, 1), "lr": lr_at(st.step, cfg)})
                    if writer:
                        writer.add_scalar("train/loss", mean_loss, st.step)
                        writer.add_scalar("train/img_per_s", rate, st.step)
                        writer.add_scalar("train/lr", lr_at(st.step, cfg), st.step)
                        writer.add_scalar("train/data_wait", data_wait, st.step)
                    t_log, n_log, loss_sum, steps_log, wait, skipped = now, 0, 0.0, 0, 0.0, 0
                stop_reason = _should_stop(cfg, st, elapsed, stop.flag, world)
                if rank == 0 and st.step % cfg.val_every == 0 and val_sets:
                    _run_validation(model, ema, meta, val_sets, st, out, opt, cfg, charset, preprocess,
                                    summary, writer, csv_path, log)
                if rank == 0 and (st.step % cfg.ckpt_every == 0 or stop_reason):
                    _save(out / LAST, model, ema, opt, st, cfg, charset, preprocess, summary)
                if stop_reason:
                    break
            if stop_reason:
                break
            t_ready = time.monotonic()
    if rank == 0:
        log(f"stopped ({stop_reason}) at step {st.step}, {st.samples_seen:,} samples seen; saved {out / LAST}")
    if writer:
        writer.close()
    return {"step": st.step, "samples_seen": st.samples_seen, "reason": stop_reason, "checkpoint": str(out / LAST)}


def _to(sample: ClassSample, device: torch.device) -> ClassSample:
    return ClassSample(sample.classes.to(device), sample.offset.to(device), sample.remap.to(device))


def _should_stop(cfg: TrainConfig, st: RunState, elapsed: float, signalled: bool, world: int) -> str:
    reason = ""
    if signalled:
        reason = "signal"
    elif cfg.max_steps and st.step >= cfg.max_steps:
        reason = "max_steps"
    elif cfg.max_minutes and elapsed >= cfg.max_minutes * 60:
        reason = "max_minutes"
    if world > 1:  # every rank must stop on the same step, or the next all-reduce hangs
        flag = torch.tensor([1.0 if reason else 0.0])
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        if flag.item() and not reason:
            reason = "peer"
    return reason


def _progress_line(st: RunState, loss: float, rate: float, lr: float, cfg: TrainConfig, elapsed: float,
                   data_wait: float = 0.0) -> str:
    eta = ""
    if cfg.max_steps:
        left = (cfg.max_steps - st.step) * cfg.batch_size / max(rate, 1e-9)
        eta = f" eta {left / 60:.1f} min"
    elif cfg.max_minutes:
        eta = f" eta {max(0.0, cfg.max_minutes - elapsed / 60):.1f} min"
    return (f"step {st.step} samples {st.samples_seen:,} loss {loss:.4f} {rate:.1f} img/s lr {lr:.2e} "
            f"data-wait {data_wait:.0%}{eta}")


def _tensorboard(out: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(out / "tb"))


def resolve_amp(amp: str, device: torch.device) -> str:
    """The precision ``amp`` means on ``device``: ``auto`` is bf16 where the hardware has bf16 arithmetic.

    On CPUs with AVX512-BF16 or AMX, oneDNN runs the convolutions, LSTM and linear layers in bf16 (about
    1.5-2x the images/s of fp32 for crnn_lite, ``crnn-ocr bench train --amp``); elsewhere bf16 would be
    emulated and slower, so ``auto`` stays fp32. Weights, optimiser state and the CTC loss stay fp32.
    """
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {AMP_MODES}, got {amp!r}")
    if amp != "auto":
        return amp
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "none"
    return "bf16" if cpu_has_bf16() else "none"


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic (AVX512-BF16 or AMX), not just oneDNN's emulation of it."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # another torch: be safe, fp32 is never slower than emulation
        return False


def autocast(amp: str, device: torch.device) -> Any:
    """The autocast context of a resolved precision (``none`` gives a disabled one)."""
    if amp == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if amp == "fp16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return torch.autocast(device.type, enabled=False)


def _run_validation(model: CRNN, ema: EMA | None, meta: ModelMeta, val_sets: dict[str, list], st: RunState,
                    out: Path, opt: torch.optim.Optimizer, cfg: TrainConfig, charset: Charset,
                    preprocess: PreprocessConfig, summary: str, writer: Any, csv_path: Path, log: Any) -> None:
    eval_model = model
    if ema:
        eval_model = CRNN(model.cfg).to(next(model.parameters()).device)
        eval_model.load_state_dict(ema.state)
    results = validate(eval_model.eval(), meta, val_sets)
    model.train()
    for r in results:
        log(f"  val {r.name}: acc {r.acc:.1%} acc_nospace {r.acc_nospace:.1%} cer {r.cer:.2%} ({r.lines} lines)")
        if writer:
            writer.add_scalar(f"val/{r.name}/acc", r.acc, st.step)
            writer.add_scalar(f"val/{r.name}/cer", r.cer, st.step)
    key = results[0].acc_nospace if results else 0.0
    if key > st.best:
        st.best = key
        _save(out / BEST, model, ema, opt, st, cfg, charset, preprocess, summary)
