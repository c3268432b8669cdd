"""The bundled model's training campaign, one session at a time.

    python scripts/campaign.py start     # resume both runs in the background (nice), from the committed checkpoints
    python scripts/campaign.py start --extend-schedule 120000   # ... with extra `crnn-ocr train` options
    python scripts/campaign.py status    # last progress line of each run
    python scripts/campaign.py snapshot  # mid-session: both runs' newest steps into checkpoints/ (no stop)
    python scripts/campaign.py finish    # stop (checkpoints saved), export, quantise, evaluate, log

Two runs share the machine, one torch thread each: the recogniser (``crnn-ocr train``, ``runs/crnn_lite``)
and the DB text detector (``crnn-ocr train-det``, ``runs/dbnet_lite``). ``finish`` leaves
``checkpoints/crnn_lite.pt`` and ``checkpoints/dbnet.pt`` (compact resume checkpoints), the bundled INT8
recogniser and its sha256, and a new row in each table of ``docs/training_log.md``; commit them afterwards.
The detector is exported and measured each session but not bundled until it beats the classical detector.
``start-rec`` / ``start-det`` and ``finish-rec`` / ``finish-det`` handle one run.

On a GPU machine that gets a copy of the working tree (and nothing installed beyond PyTorch, ONNX Runtime and
OpenCV), after ``finish`` here:

    python scripts/campaign.py device-pack          # here: the synth pack as .device/pack.tar.xz (ignored)
    PYTHONPATH=. python3 scripts/campaign.py device-train 9 14
                                                    # there, with .device carried: 9 minutes, 14 data workers;
                                                    # the compact checkpoint lands in $OUT/crnn_lite.pt
    python scripts/campaign.py adopt PATH           # here: that checkpoint becomes the run's and the committed one

``device-train-det MINUTES WORKERS`` trains the DB detector the same way (from ``.device/dbnet.pt`` when that is
carried too) and leaves ``$OUT/dbnet.pt``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "crnn_lite.yaml"
RUN = ROOT / "runs" / "crnn_lite"
COMMITTED = ROOT / "checkpoints" / "crnn_lite.pt"
BUNDLED = ROOT / "crnn_ocr" / "assets" / "models" / "crnn_lite.int8.onnx"
LOG = ROOT / "docs" / "training_log.md"
DEV = ROOT.parent / "shared" / "data" / "real_dev"
PIDFILE = RUN / "train.pid"
DET_CONFIG = ROOT / "configs" / "dbnet.yaml"
DET_RUN = ROOT / "runs" / "dbnet_lite"
DET_COMMITTED = ROOT / "checkpoints" / "dbnet.pt"
DET_ONNX = DET_RUN / "dbnet_lite.onnx"
DET_HEADING = "## The detector (`dbnet_lite`)"
DOCS_PAGES = DEV / "docs"
CLI = [sys.executable, "-m", "crnn_ocr"]
DEVICE_DIR = ROOT / ".device"
"""What travels to a GPU machine beside the working tree (git-ignored): the synth pack."""
DEVICE_RUN = ROOT / "runs" / "crnn_lite_device"


def start(*train_args: str) -> None:
    """Resume both runs (``train_args`` go to ``crnn-ocr train``)."""
    start_rec(*train_args)
    start_det()


def start_rec(*train_args: str) -> None:
    """Resume the recogniser in the background at low priority, on one torch thread.

    One core each: two torch threads beside the detector's spin-wait for each other (4-15 lines/s
    against about 70 on one thread).
    """
    _launch("train", CONFIG, RUN, COMMITTED, ("--threads", "1", *train_args))


def start_det(*train_args: str) -> None:
    """Resume the detector in the background at low priority, on one torch thread."""
    _launch("train-det", DET_CONFIG, DET_RUN, DET_COMMITTED, ("--out", str(DET_RUN), "--threads", "1", *train_args))


def _launch(command: str, config: Path, run_dir: Path, committed: Path, args: tuple[str, ...]) -> None:
    """Start ``crnn-ocr COMMAND --resume`` under ``nice``, seeded from the committed checkpoint."""
    pidfile = run_dir / "train.pid"
    if _alive(pidfile):
        sys.exit(f"{run_dir.relative_to(ROOT)} is training already (pid {pidfile.read_text()})")
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "last.pt").is_file() and committed.is_file():
        shutil.copy2(committed, run_dir / "last.pt")
        print(f"seeded {run_dir / 'last.pt'} from {committed.relative_to(ROOT)}")
    log = (run_dir / "train.log").open("a")
    proc = subprocess.Popen(["nice", "-n", "10", *CLI, command, "--config", str(config), "--resume", *args],
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    pidfile.write_text(str(proc.pid))
    print(f"{command} in the background, pid {proc.pid}; log: {run_dir / 'train.log'}")


def _alive(pidfile: Path) -> bool:
    if not pidfile.exists():
        return False
    try:
        os.kill(int(pidfile.read_text()), 0)
    except (ProcessLookupError, ValueError):
        return False
    return True


def status() -> None:
    """Print the newest progress line of each run."""
    for run_dir in (RUN, DET_RUN):
        log = run_dir / "train.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        state = "running" if _alive(run_dir / "train.pid") else "stopped"
        last = next((ln for ln in reversed(lines) if ln.startswith(("step", "  val"))), "no progress yet")
        print(f"{run_dir.name} ({state}): {last}")


def stop(timeout: float = 300.0, pidfile: Path = PIDFILE) -> None:
    """SIGTERM a trainer (it saves a checkpoint first) and wait for it."""
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pidfile.unlink()
        return
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(1)
    pidfile.unlink(missing_ok=True)


def run(*args: str) -> None:
    """Run a crnn-ocr command, failing loudly."""
    print("+ crnn-ocr", " ".join(args), flush=True)
    subprocess.run([*CLI, *args], check=True, cwd=ROOT)


def evaluate(model: Path, tag: str) -> dict:
    """Metrics per dev set for ``model``."""
    out = RUN / f"eval_{tag}.json"
    run("eval", "--model", str(model), "--data", str(DEV / "lines_zh"), "--data", str(DEV / "lines_en"),
        "--json", str(out), "--errors", "10", "--breakdown")
    return {s["name"]: s for s in json.loads(out.read_text(encoding="utf-8"))["sets"]}


def add_row(doc: str, row: str, heading: str | None = None) -> str:
    r"""``doc`` with ``row`` after the last table row of a section; notes below the table stay below.

    The section is the one under ``heading`` (a whole line), or the text before the first ``## `` heading.

    >>> add_row("t\n| a |\nnote\n## B\n| b |\n", "| c |", "## B").splitlines()[-1]
    '| c |'
    >>> add_row("t\n| a |\nnote\n## B\n| b |\n", "| c |").splitlines()[2]
    '| c |'
    """
    lines = doc.splitlines()
    first = lines.index(heading) + 1 if heading is not None else 0
    end = next((i for i in range(first, len(lines)) if lines[i].startswith("## ")), len(lines))
    rows = [i for i in range(first, end) if lines[i].startswith("|")]
    if not rows:
        raise ValueError(f"no table under {heading or 'the title'}")
    return "\n".join([*lines[:rows[-1] + 1], row, *lines[rows[-1] + 1:]]) + "\n"


def trainer_hours(ckpt: dict) -> str:
    """Trainer wall time per device type, e.g. ``3.9 h CPU + 0.18 h GPU``."""
    from crnn_ocr.train.checkpoint import device_seconds

    secs = device_seconds(ckpt)
    names = {"cpu": "CPU", "cuda": "GPU"}
    return " + ".join(f"{v / 3600:.2f} h {names.get(k, k)}" for k, v in sorted(secs.items()) if v > 0) or "0 h"


def snapshot() -> None:
    """Compact both runs' newest saved checkpoints into ``checkpoints/`` while they keep training.

    A session can end before ``finish``; commit a snapshot on the way so the steps trained so far are kept.
    The trainers write ``last.pt`` atomically (a rename), so reading it under a running trainer is safe.
    Nothing is exported or measured: the bundled model and the training log are ``finish``'s.
    """
    from crnn_ocr.train.checkpoint import atomic_save, compact, load_checkpoint
    from crnn_ocr.train.det_loop import load_det_checkpoint

    for run_dir, committed, load in ((RUN, COMMITTED, load_checkpoint),
                                     (DET_RUN, DET_COMMITTED, load_det_checkpoint)):
        if not (run_dir / "last.pt").is_file():
            print(f"{run_dir.name}: no checkpoint yet")
            continue
        ckpt = load(run_dir / "last.pt")
        atomic_save(compact(ckpt), committed)
        print(f"{run_dir.name}: step {ckpt['step']:,} -> {committed.relative_to(ROOT)}")


def finish() -> None:
    """Finish both runs."""
    finish_rec()
    finish_det()


def finish_rec() -> None:
    """Stop, compact, export, quantise, evaluate and log the recogniser."""
    import torch

    from crnn_ocr.preprocess import EDGE_MARGIN
    from crnn_ocr.train.checkpoint import atomic_save, compact, load_checkpoint

    stop()
    ckpt = load_checkpoint(RUN / "last.pt")
    COMMITTED.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(compact(ckpt), COMMITTED)
    fp32 = RUN / "crnn_lite.onnx"
    run("export", str(RUN / "last.pt"), "-o", str(fp32), "--edge-margin", str(EDGE_MARGIN))
    BUNDLED.parent.mkdir(parents=True, exist_ok=True)
    run("quantize", str(fp32), "-o", str(BUNDLED))
    BUNDLED.with_name(BUNDLED.name + ".sha256").write_text(
        f"{hashlib.sha256(BUNDLED.read_bytes()).hexdigest()}  {BUNDLED.name}\n")
    m32, m8 = evaluate(fp32, "fp32"), evaluate(BUNDLED, "int8")
    zh, en = m8.get("lines_zh", {}), m8.get("lines_en", {})
    row = (f"| {dt.date.today()} | {ckpt['step']:,} | {ckpt['samples_seen']:,} | {trainer_hours(ckpt)} "
           f"| {zh.get('acc_nospace', 0):.1%} / {m32.get('lines_zh', {}).get('acc_nospace', 0):.1%} "
           f"| {zh.get('cer', 0):.1%} | {en.get('acc_alnum_ci', 0):.1%} / "
           f"{m32.get('lines_en', {}).get('acc_alnum_ci', 0):.1%} | {en.get('cer', 0):.1%} "
           f"| {BUNDLED.stat().st_size / 1e6:.1f} MB |")
    LOG.write_text(add_row(LOG.read_text(encoding="utf-8"), row), encoding="utf-8")
    print(row)
    print(f"checkpoint {COMMITTED.stat().st_size / 1e6:.1f} MB, torch {torch.__version__}; now commit:")
    print(f"  git add {COMMITTED.relative_to(ROOT)} {BUNDLED.relative_to(ROOT)}* {LOG.relative_to(ROOT)}")


def finish_det() -> None:
    """Stop, compact, export and measure the detector; a row in the detector's table of the log.

    Measured on the trainer's own synthetic validation pages (its last ``val.csv`` row) and, detection
    only, on the real receipt pages.
    """
    import torch

    from crnn_ocr.train.checkpoint import atomic_save, compact
    from crnn_ocr.train.det_loop import load_det_checkpoint

    stop(pidfile=DET_RUN / "train.pid")
    if not (DET_RUN / "last.pt").is_file():
        print("no detector run to finish")
        return
    ckpt = load_det_checkpoint(DET_RUN / "last.pt")
    atomic_save(compact(ckpt), DET_COMMITTED)
    run("export-det", str(DET_RUN / "last.pt"), "-o", str(DET_ONNX))
    val = (DET_RUN / "val.csv").read_text().splitlines() if (DET_RUN / "val.csv").exists() else []
    synth = dict(zip(val[0].split(","), val[-1].split(","), strict=True)) if len(val) > 1 else {}
    real = DET_RUN / "bench_docs.json"
    run("bench", "page", "--data", str(DOCS_PAGES), "--det", "db", "--det-model", str(DET_ONNX), "--det-only",
        "--no-rapidocr", "--json", str(real))
    db = next(r for r in json.loads(real.read_text(encoding="utf-8"))["systems"] if r["system"] == "db")
    row = (f"| {dt.date.today()} | {ckpt['step']:,} | {ckpt['samples_seen']:,} | {trainer_hours(ckpt)} "
           f"| {float(synth.get('f1', 0)):.3f} (step {synth.get('step', '-')}) | {db['det_recall']:.3f} "
           f"| {db['det_precision']:.3f} | {db['det_f1']:.3f} |")
    LOG.write_text(add_row(LOG.read_text(encoding="utf-8"), row, DET_HEADING), encoding="utf-8")
    print(row)
    print(f"checkpoint {DET_COMMITTED.stat().st_size / 1e6:.1f} MB, torch {torch.__version__}; now commit:")
    print(f"  git add {DET_COMMITTED.relative_to(ROOT)} {LOG.relative_to(ROOT)}")


def device_pack() -> None:
    """Here: pack the synth fonts and corpus into ``.device/pack.tar.xz`` for a machine without them."""
    import tarfile
    import tempfile

    DEVICE_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        run("synth-pack", str(Path(tmp) / "pack"))
        with tarfile.open(DEVICE_DIR / "pack.tar.xz", "w:xz") as tar:
            tar.add(Path(tmp) / "pack", arcname="pack")
    size = (DEVICE_DIR / "pack.tar.xz").stat().st_size / 1e6
    print(f"{DEVICE_DIR.name}/pack.tar.xz: {size:.1f} MB. On the GPU machine, with {DEVICE_DIR.name} carried:")
    print("  PYTHONPATH=. python3 scripts/campaign.py device-train 9 14")


def device_train(minutes: str = "9", workers: str = "14", device: str = "cuda") -> None:
    """There: resume the committed checkpoint on ``device`` for ``minutes``; compact result to ``$OUT``.

    The run has its own folder (``runs/crnn_lite_device``), so trying this on a machine that also runs the
    CPU campaign leaves that run alone.
    """
    from crnn_ocr.train.checkpoint import atomic_save, compact, load_checkpoint

    if not COMMITTED.is_file():
        sys.exit(f"{COMMITTED.relative_to(ROOT)} is missing: the campaign resumes, it does not start over")
    out = _train_there("train", CONFIG, DEVICE_RUN, COMMITTED, device, workers, minutes)
    ckpt = load_checkpoint(DEVICE_RUN / "last.pt")
    atomic_save(compact(ckpt), out / "crnn_lite.pt")
    print(f"step {ckpt['step']:,}, {ckpt['samples_seen']:,} samples; {trainer_hours(ckpt)} -> {out / 'crnn_lite.pt'}")


def device_train_det(minutes: str = "5", workers: str = "14", device: str = "cuda") -> None:
    """There: train the DB detector (from ``.device/dbnet.pt`` if carried) for ``minutes``; to ``$OUT/dbnet.pt``.

    Detection training renders pages on the CPU and costs ~1.25 CPU s per 640 px crop on 2 cores: it wants
    the GPU machine. Its checkpoint (0.44 M parameters) is small enough to carry back and forth.
    """
    det_run = ROOT / "runs" / "dbnet_device"
    out = _train_there("train-det", ROOT / "configs" / "dbnet.yaml", det_run, DEVICE_DIR / "dbnet.pt", device,
                       workers, minutes)
    shutil.copy2(det_run / "last.pt", out / "dbnet.pt")
    print(f"detector checkpoint -> {out / 'dbnet.pt'}")


def _train_there(command: str, config: Path, run_dir: Path, seed: Path, device: str, workers: str,
                 minutes: str) -> Path:
    """Run a ``crnn-ocr`` training command from the carried pack, resuming ``seed`` if it exists.

    Returns ``$OUT`` (made if missing), where the command's log is written as ``COMMAND.log``.
    """
    out = Path(os.environ.get("OUT", DEVICE_RUN / "out"))
    out.mkdir(parents=True, exist_ok=True)
    env = _unpacked_env()
    run_dir.mkdir(parents=True, exist_ok=True)
    if seed.is_file():
        shutil.copy2(seed, run_dir / "last.pt")
    with (out / f"{command}.log").open("w") as log:
        subprocess.run([*CLI, command, "--config", str(config), "--resume", "--out", str(run_dir),
                        "--device", device, "--workers", workers, "--max-minutes", minutes],
                       env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=True)
    return out


def _unpacked_env() -> dict[str, str]:
    """The environment for a run that renders from the carried synth pack (unpacked once into /tmp)."""
    import tarfile

    from crnn_ocr.synth.pack import PACK_ENV

    unpacked = Path("/tmp/crnn_ocr_pack")
    if not (unpacked / "pack").is_dir():
        with tarfile.open(DEVICE_DIR / "pack.tar.xz") as tar:
            tar.extractall(unpacked, filter="data")
    return {**os.environ, PACK_ENV: str(unpacked / "pack"), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def adopt(path: str) -> None:
    """Here: a checkpoint trained elsewhere becomes the run's ``last.pt`` and the committed one."""
    from crnn_ocr.train.checkpoint import load_checkpoint

    if _alive(PIDFILE):
        sys.exit("the trainer is running here: `campaign.py stop` first")
    ckpt = load_checkpoint(path)
    RUN.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, RUN / "last.pt")
    shutil.copy2(path, COMMITTED)
    print(f"adopted step {ckpt['step']:,} ({ckpt['samples_seen']:,} samples, {trainer_hours(ckpt)})")


if __name__ == "__main__":
    commands = {"start": start, "start-rec": start_rec, "start-det": start_det, "status": status, "stop": stop,
                "snapshot": snapshot, "finish": finish, "finish-rec": finish_rec, "finish-det": finish_det,
                "device-pack": device_pack, "device-train": device_train, "device-train-det": device_train_det,
                "adopt": adopt}
    takes_args = {"start", "start-rec", "start-det", "device-train", "device-train-det", "adopt"}
    if len(sys.argv) < 2 or sys.argv[1] not in commands or (len(sys.argv) > 2 and sys.argv[1] not in takes_args):
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(commands)}}} (start takes extra crnn-ocr train options)")
    commands[sys.argv[1]](*sys.argv[2:])
