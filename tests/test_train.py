"""Trainer behaviour on tiny models: shapes, learning, exact resume, checkpoints, charset extension."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import render_line  # noqa: E402

from crnn_ocr.charset import Charset  # noqa: E402
from crnn_ocr.data.batches import Batch  # noqa: E402
from crnn_ocr.models import create_model, list_models, model_config  # noqa: E402
from crnn_ocr.train.checkpoint import atomic_save, compact, load_checkpoint  # noqa: E402
from crnn_ocr.train.config import TrainConfig  # noqa: E402
from crnn_ocr.train.loop import ctc_loss, extend_head, lr_at, sample_classes, train  # noqa: E402
from crnn_ocr.train.run import extended_schedule  # noqa: E402

WORDS = ["发票", "合计", "12.50", "TOTAL", "号码", "金额", "ab", "2024年", "你好", "CASH", "日期", "¥8",
         "数量", "单价", "tax", "No.7", "收据", "OK", "人民币", "100"]


class LineSet:
    """A tiny finite source of rendered lines."""

    def __init__(self, words):
        self.items = [(render_line(w, height=36, font_size=26), w) for w in words]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


@pytest.fixture(scope="module")
def lines_dir(tmp_path_factory):
    from PIL import Image

    d = tmp_path_factory.mktemp("lines")
    rows = []
    for i, w in enumerate(WORDS):
        Image.fromarray(render_line(w, height=36, font_size=26)).save(d / f"{i}.png")
        rows.append(f"{i}.png\t{w}")
    (d / "labels.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return d


def charset_for(words):
    return Charset(tuple(sorted(set("".join(words)))))


def tiny_cfg(out, lines_dir, **kw):
    base = dict(model="crnn_tiny", out_dir=str(out), seed=3, threads=1, workers=0, batch_size=8, chunk_size=40,
                lr=3e-3, warmup_steps=5, schedule_steps=400, ema_decay=0.0, val_synth=0, tensorboard=False,
                log_every=5, val_every=10_000, ckpt_every=10_000, max_batch_pixels=8 * 400,
                sources=[{"kind": "tsv", "path": str(lines_dir), "weight": 1.0}],
                stages=[{"start_step": 0, "max_chars": 40, "degrade": 0.0}])
    base.update(kw)
    return TrainConfig.from_dict(base)


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("width", [32, 100, 320, 1000])
def test_output_frames_for_width(name, width):
    model = create_model(name, num_classes=50).eval()
    with torch.no_grad():
        out = model(torch.zeros(2, 1, 32, width))
    assert out.shape == (2, width // model.cfg.width_stride, 50)
    assert model.frames(width) == out.shape[1]


def test_shipped_model_size_budget():
    model = create_model("crnn_lite", num_classes=7155)
    params = sum(p.numel() for p in model.parameters())
    assert params <= 5_000_000
    assert model_config("crnn_lite").width_stride == 4


def test_lr_schedule():
    cfg = TrainConfig(lr=1e-3, min_lr=1e-5, warmup_steps=10, schedule_steps=110)
    assert lr_at(0, cfg) == pytest.approx(1e-4)
    assert lr_at(9, cfg) == pytest.approx(1e-3)
    assert lr_at(60, cfg) == pytest.approx((1e-3 + 1e-5) / 2)
    assert lr_at(110, cfg) == pytest.approx(1e-5) == lr_at(10_000, cfg)


@pytest.mark.parametrize("step", [20, 60, 105, 200])
def test_extended_schedule_keeps_the_rate_and_decays_more_slowly(step):
    cfg = TrainConfig(lr=1e-3, min_lr=1e-5, warmup_steps=10, schedule_steps=110)
    new = extended_schedule(cfg, step, 400)
    assert new.schedule_steps == 400 and cfg.schedule_steps == 110  # a copy: the input is left as it was
    assert lr_at(step, new) == pytest.approx(lr_at(step, cfg))
    assert lr_at(400, new) == pytest.approx(1e-5) == lr_at(1000, new)
    later = [lr_at(s, new) for s in range(step, 401, 10)]
    assert all(a >= b for a, b in zip(later, later[1:], strict=False))  # no jump, only decay
    if step < 110:
        assert lr_at(step + 5, new) > lr_at(step + 5, cfg)


def test_extended_schedule_rejects_impossible_requests():
    cfg = TrainConfig(lr=1e-3, min_lr=1e-5, warmup_steps=10, schedule_steps=110)
    with pytest.raises(ValueError, match="warm-up"):
        extended_schedule(cfg, 5, 400)
    with pytest.raises(ValueError, match="end after"):
        extended_schedule(cfg, 60, 60)


def test_anneal_from_the_floor_to_a_lower_one():
    cfg = TrainConfig(lr=1e-3, min_lr=5e-5, warmup_steps=10, schedule_steps=110)
    new = extended_schedule(cfg, 300, 500, min_lr=5e-6)
    assert cfg.min_lr == 5e-5  # a copy
    assert lr_at(300, new) == pytest.approx(5e-5) and lr_at(500, new) == pytest.approx(5e-6) == lr_at(900, new)
    later = [lr_at(s, new) for s in range(300, 501, 10)]
    assert all(a > b for a, b in zip(later, later[1:], strict=False))  # decays on every step to the new floor
    assert extended_schedule(cfg, 300, 500).lr == pytest.approx(5e-5)  # no new floor: flat at the old one
    with pytest.raises(ValueError, match="floor"):
        extended_schedule(cfg, 300, 500, min_lr=1e-4)  # above the current rate


def test_anneal_to_is_saved_and_needs_a_target_step(tmp_path, lines_dir):
    cs_path = tmp_path / "cs.txt"
    charset_for(WORDS).save(cs_path)
    cfg = tiny_cfg(tmp_path / "run", lines_dir, max_steps=10, charset=str(cs_path), min_lr=1e-4)
    train(cfg, log=lambda s: None)
    with pytest.raises(ValueError, match="extend_schedule"):
        train(tiny_cfg(tmp_path / "run", lines_dir, max_steps=12, charset=str(cs_path)), resume=True,
              log=lambda s: None, anneal_to=1e-5)
    train(tiny_cfg(tmp_path / "run", lines_dir, max_steps=12, charset=str(cs_path)), resume=True,
          log=lambda s: None, extend_schedule=50, anneal_to=1e-5)
    saved = TrainConfig.from_dict(load_checkpoint(tmp_path / "run" / "last.pt")["config"])
    assert saved.min_lr == pytest.approx(1e-5) and saved.schedule_steps == 50
    assert lr_at(50, saved) == pytest.approx(1e-5)


def test_resume_with_extended_schedule_is_saved(tmp_path, lines_dir):
    cs_path = tmp_path / "cs.txt"
    charset_for(WORDS).save(cs_path)
    cfg = tiny_cfg(tmp_path / "run", lines_dir, max_steps=10, charset=str(cs_path))
    with pytest.raises(ValueError, match="resume"):
        train(cfg, log=lambda s: None, extend_schedule=1000)
    train(cfg, log=lambda s: None)
    before = lr_at(10, TrainConfig.from_dict(load_checkpoint(tmp_path / "run" / "last.pt")["config"]))
    lines: list[str] = []
    train(tiny_cfg(tmp_path / "run", lines_dir, max_steps=12, charset=str(cs_path)), resume=True,
          log=lines.append, extend_schedule=1000)
    assert any("schedule extended" in ln for ln in lines)
    saved = TrainConfig.from_dict(load_checkpoint(tmp_path / "run" / "last.pt")["config"])
    assert saved.schedule_steps == 1000 and lr_at(10, saved) == pytest.approx(before)
    # A later plain resume keeps the extended schedule (the run definition comes from the checkpoint).
    train(tiny_cfg(tmp_path / "run", lines_dir, max_steps=14, charset=str(cs_path)), resume=True,
          log=lambda s: None)
    assert TrainConfig.from_dict(load_checkpoint(tmp_path / "run" / "last.pt")["config"]).schedule_steps == 1000


def test_amp_auto_follows_the_hardware():
    from crnn_ocr.train.loop import cpu_has_bf16, resolve_amp

    cpu = torch.device("cpu")
    info = Path("/proc/cpuinfo")
    flags = info.read_text().split() if info.exists() else []
    if flags:  # the kernel's view agrees with torch's
        assert cpu_has_bf16() == ("avx512_bf16" in flags or "amx_tile" in flags)
    assert resolve_amp("auto", cpu) == ("bf16" if cpu_has_bf16() else "none")
    assert resolve_amp("none", cpu) == "none" and resolve_amp("bf16", cpu) == "bf16"
    with pytest.raises(ValueError, match="amp must be one of"):
        resolve_amp("int4", cpu)


def test_bf16_training_runs_and_precision_is_a_resume_setting(tmp_path, lines_dir):
    cs_path = tmp_path / "cs.txt"
    charset_for(WORDS).save(cs_path)
    lines: list[str] = []
    train(tiny_cfg(tmp_path / "run", lines_dir, max_steps=6, charset=str(cs_path), amp="bf16"), log=lines.append)
    assert "precision: bf16 autocast (amp: bf16)" in lines
    losses = _losses(tmp_path / "run")
    assert losses and all(np.isfinite(losses))
    ck = load_checkpoint(tmp_path / "run" / "last.pt")
    assert all(v.dtype == torch.float32 for v in ck["model"].values() if v.is_floating_point())  # fp32 weights
    lines.clear()
    train(tiny_cfg(tmp_path / "run", lines_dir, max_steps=8, charset=str(cs_path), amp="none"), resume=True,
          log=lines.append)
    assert "precision: fp32 (amp: none)" in lines
    assert TrainConfig.from_dict(load_checkpoint(tmp_path / "run" / "last.pt")["config"]).amp == "none"


def test_config_rejects_unknown_keys(tmp_path):
    with pytest.raises(ValueError, match="unknown"):
        TrainConfig.from_dict({"lrr": 1})
    with pytest.raises(ValueError, match="unknown"):
        TrainConfig.from_dict({"sources": [{"kind": "synth", "wieght": 2}]})
    p = tmp_path / "c.yaml"
    p.write_text("model: crnn_tiny\nstages:\n  - {start_step: 0, max_chars: 5}\n")
    assert TrainConfig.load(p).stages[0].max_chars == 5


def test_atomic_save_leaves_no_partial_file(tmp_path):
    target = tmp_path / "ck.pt"
    atomic_save({"a": torch.ones(3)}, target)

    class Boom:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_save({"a": Boom()}, target)
    assert torch.load(target)["a"].sum() == 3  # the old checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # no temp file left behind


def _losses(out):
    rows = (out / "log.csv").read_text().splitlines()[1:]
    return [float(r.split(",")[2]) for r in rows]


@pytest.mark.parametrize("sampled", [0, 24])
def test_exact_resume_matches_uninterrupted_run(tmp_path, lines_dir, sampled):
    full = tiny_cfg(tmp_path / "full", lines_dir, max_steps=30, charset="", sampled_classes=sampled)
    cs_path = tmp_path / "cs.txt"
    charset_for(WORDS).save(cs_path)
    full.charset = str(cs_path)
    train(full, log=lambda s: None)
    for stop in (10, 20, 30):
        piece = tiny_cfg(tmp_path / "pieces", lines_dir, max_steps=stop, charset=str(cs_path),
                         sampled_classes=sampled)
        train(piece, resume=True, log=lambda s: None)
    a, b = _losses(tmp_path / "full"), _losses(tmp_path / "pieces")
    assert len(a) == len(b) == 6
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    ca, cb = load_checkpoint(tmp_path / "full" / "last.pt"), load_checkpoint(tmp_path / "pieces" / "last.pt")
    assert ca["step"] == cb["step"] == 30 and ca["samples_seen"] == cb["samples_seen"]
    for k in ca["model"]:
        torch.testing.assert_close(ca["model"][k], cb["model"][k], rtol=1e-4, atol=1e-5)
    # Trainer time is kept per device type across resumes (the training log reports CPU and GPU hours).
    assert set(cb["device_seconds"]) == {"cpu"}
    assert cb["device_seconds"]["cpu"] == pytest.approx(cb["train_seconds"]) and cb["train_seconds"] > 0


@pytest.mark.slow
def test_overfits_twenty_rendered_lines(tmp_path, lines_dir):
    from crnn_ocr.data.labels import read_labels_tsv
    from crnn_ocr.engine import Recognizer
    from crnn_ocr.train.backend import TorchBackend

    cs_path = tmp_path / "cs.txt"
    charset_for(WORDS).save(cs_path)
    cfg = tiny_cfg(tmp_path / "fit", lines_dir, max_steps=800, charset=str(cs_path), lr=5e-3, warmup_steps=20,
                   schedule_steps=800, min_lr=1e-4, model_overrides={"rnn_hidden": 64, "channels": [16, 32, 64]})
    train(cfg, log=lambda s: None)
    rec = Recognizer(TorchBackend.from_checkpoint(tmp_path / "fit" / "last.pt", use_ema=False))
    items = read_labels_tsv(lines_dir)
    preds = [r.text for r in rec([x.path for x in items])]
    wrong = [(p, x.text) for p, x in zip(preds, items, strict=True) if p != x.text]
    assert not wrong, wrong


def test_extend_charset_keeps_old_predictions():
    torch.manual_seed(0)
    model = create_model("crnn_tiny", num_classes=30).eval()
    x = torch.randn(3, 1, 32, 120)
    with torch.no_grad():
        before = model(x).argmax(-1)
        extend_head(model, 40)
        after = model(x)
    assert after.shape[-1] == 40
    assert torch.equal(after.argmax(-1), before)
    assert model.cfg.num_classes == 40


def test_compact_checkpoint_is_smaller_and_loads(tmp_path):
    model = create_model("crnn_tiny", num_classes=30)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 1, 32, 64)).sum().backward()
    opt.step()
    ck = {"model": model.state_dict(), "optimizer": opt.state_dict(), "ema": None}
    atomic_save(ck, tmp_path / "full.pt")
    atomic_save(compact(ck), tmp_path / "small.pt")
    assert (tmp_path / "small.pt").stat().st_size < 0.7 * (tmp_path / "full.pt").stat().st_size
    small = torch.load(tmp_path / "small.pt", weights_only=False)
    for k, v in model.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(small["model"][k].float(), v, rtol=2e-3, atol=2e-3)


def test_unknown_characters_in_user_labels_are_reported(tmp_path, lines_dir):
    from crnn_ocr.charset import UnknownCharacterError

    cs_path = tmp_path / "cs.txt"
    Charset(tuple("0123456789")).save(cs_path)
    cfg = tiny_cfg(tmp_path / "bad", lines_dir, max_steps=2, charset=str(cs_path), on_unknown="error")
    with pytest.raises(UnknownCharacterError, match="not in the charset"):
        train(cfg, log=lambda s: None)


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path, lines_dir):
    cs_path = tmp_path / "cs.txt"
    charset_for(WORDS).save(cs_path)
    cfg_path = tmp_path / "ddp.yaml"
    import yaml

    d = tiny_cfg(tmp_path / "ddp", lines_dir, max_steps=4, charset=str(cs_path)).to_dict()
    cfg_path.write_text(yaml.safe_dump(d))
    env = {**os.environ, "CRNN_OCR_DDP_BACKEND": "gloo", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "crnn_ocr",
           "train", "--config", str(cfg_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    # The ranks' own errors come first in stderr, the launcher's summary last: show both.
    assert r.returncode == 0, r.stderr[:1500] + "\n...\n" + r.stderr[-800:]
    ck = load_checkpoint(Path(d["out_dir"]) / "last.pt")
    assert ck["step"] == 4
    assert ck["samples_seen"] > 4 * 2  # both ranks' samples are counted


def test_sampled_classes_hold_blank_and_every_label():
    targets = np.array([5, 9, 9, 300, 1999])
    s = sample_classes(targets, 2000, 64, seed=1, step=7)
    assert len(s.classes) == 64
    assert {0, 5, 9, 300, 1999} <= set(s.classes.tolist())
    assert torch.equal(s.classes, s.classes.sort().values)
    assert torch.equal(s.classes[s.remap[torch.from_numpy(targets)]], torch.from_numpy(targets))
    assert (s.remap >= 0).sum() == 64
    fixed = torch.isin(s.classes, torch.tensor([0, 5, 9, 300, 1999]))
    assert (s.offset[fixed] == 0).all() and (s.offset[~fixed] > 0).all()
    # the same (seed, step) draws the same rows, so a resumed run is exact; another step draws others
    assert torch.equal(sample_classes(targets, 2000, 64, 1, 7).classes, s.classes)
    assert not torch.equal(sample_classes(targets, 2000, 64, 1, 8).classes, s.classes)


def test_sampled_softmax_normaliser_is_unbiased():
    """Averaged over draws, the sample's corrected partition sum equals the full one."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3000, generator=gen) * 2.0
    targets = np.array([1, 2, 3, 40])
    full = logits.exp().sum()
    est = torch.stack([(logits[s.classes] + s.offset).exp().sum()
                       for s in (sample_classes(targets, 3000, 300, 5, i) for i in range(400))]).mean()
    assert abs(float(est / full) - 1.0) < 0.03


def test_sampling_every_class_is_the_full_loss():
    model = create_model("crnn_tiny", num_classes=30).eval()
    x = torch.rand(2, 1, 32, 64)
    batch = Batch(np.zeros((2, 1, 32, 64), np.float32), np.array([3, 4, 5, 29, 7]), np.array([3, 2]),
                  np.array([64, 60]), ("a", "b"))
    full = ctc_loss(model(x), batch, model.cfg.width_stride)
    s = sample_classes(batch.targets, 30, 30, seed=0, step=0)
    assert torch.allclose(ctc_loss(model(x, s.classes), batch, model.cfg.width_stride, s), full)
    part = sample_classes(batch.targets, 30, 12, seed=0, step=0)
    assert not torch.allclose(ctc_loss(model(x, part.classes), batch, model.cfg.width_stride, part), full)


@pytest.mark.parametrize("convert", [True, False])
def test_channels_last_resume_from_contiguous_optimizer_state(convert):
    """A checkpoint from a contiguous model resumes in a channels-last one with the same next step."""
    from crnn_ocr.train.run import float_optimizer_state

    torch.manual_seed(0)
    a = create_model("crnn_tiny", num_classes=12)
    x, y = torch.rand(3, 1, 32, 48), torch.randint(1, 12, (3, 4))

    def step(model, opt, x):
        lp = model(x).log_softmax(-1).transpose(0, 1)
        loss = torch.nn.functional.ctc_loss(lp, y, torch.full((3,), lp.shape[0]), torch.full((3,), 4))
        opt.zero_grad()
        loss.backward()
        opt.step()

    opt_a = torch.optim.AdamW(a.parameters(), lr=1e-2, fused=True)
    for _ in range(2):
        step(a, opt_a, x)
    b = create_model("crnn_tiny", num_classes=12)
    b.load_state_dict(a.state_dict())
    b.to(memory_format=torch.channels_last)
    opt_b = torch.optim.AdamW(b.parameters(), lr=1e-2, fused=True)
    opt_b.load_state_dict(opt_a.state_dict())
    if convert:
        float_optimizer_state(opt_b)
    step(a, opt_a, x)
    step(b, opt_b, x.contiguous(memory_format=torch.channels_last))
    # moments paired with the wrong weights move most conv weights by ~lr; float noise moves only a few
    convs = [(pa, pb) for pa, pb in zip(a.parameters(), b.parameters(), strict=True) if pa.ndim == 4]
    moved = torch.cat([((pa - pb).abs() > 1e-3).flatten() for pa, pb in convs]).float().mean()
    assert (moved < 0.02) if convert else (moved > 0.2)


@pytest.mark.parametrize("sampled", [0, 32])
def test_bench_train_times_the_trainers_step(sampled):
    from crnn_ocr.train.bench import bench_model

    r = bench_model("crnn_tiny", batch=4, width=64, steps=1, label_len=3, sampled_classes=sampled)
    assert r["frames"] == 64 // model_config("crnn_tiny").width_stride
    assert r["train_img_s"] > 0 and r["infer_lines_s"] > 0 and r["sampled_classes"] == sampled


def test_progress_lines_report_the_share_of_time_waiting_for_data(tmp_path, lines_dir):
    import re

    lines = []
    train(tiny_cfg(tmp_path / "run", lines_dir, max_steps=15, charset="", chunk_size=16), log=lines.append)
    shares = [int(m.group(1)) for ln in lines if (m := re.search(r"data-wait (\d+)%", ln))]
    assert len(shares) == 3 and all(0 <= s <= 100 for s in shares)
    assert shares[0] > 0  # the first chunk is rendered while the loop waits (no workers: all of it)


def test_a_non_finite_step_is_skipped_and_leaves_weights_optimiser_and_ema_alone():
    import torch
    from torch import nn

    from crnn_ocr.train.run import EMA, NonFiniteError, count_bad_step, optimizer_step

    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    ema = EMA(model, 0.9)
    x = torch.randn(8, 4)
    assert optimizer_step(model(x).pow(2).mean(), model, opt, 1.0, ema, 0)
    before = [p.detach().clone() for p in model.parameters()]
    moments = [s["exp_avg"].clone() for s in opt.state.values()]
    ema_before = {k: v.clone() for k, v in ema.state.items()}
    bad = model(x * float("nan")).pow(2).mean()
    assert not optimizer_step(bad, model, opt, 1.0, ema, 1)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert all(torch.equal(a, s["exp_avg"]) for a, s in zip(moments, opt.state.values(), strict=True))
    assert all(torch.equal(v, ema.state[k]) for k, v in ema_before.items())
    assert optimizer_step(model(x).pow(2).mean(), model, opt, 0.0, None, 2), "finite again: steps again"
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert count_bad_step(False, 3, limit=5) == 4 and count_bad_step(True, 4, limit=5) == 0
    with pytest.raises(NonFiniteError, match="non-finite"):
        count_bad_step(False, 4, limit=5)
