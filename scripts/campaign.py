"""The bundled model's training campaign, one session at a time.

    python scripts/campaign.py start     # resume training in the background (nice), from the committed checkpoint
    python scripts/campaign.py start --extend-schedule 120000   # ... with extra `crnn-ocr train` options
    python scripts/campaign.py status    # last progress line
    python scripts/campaign.py finish    # stop (checkpoint saved), export, quantise, evaluate, log, stage the files

``finish`` leaves ``checkpoints/crnn_lite.pt`` (compact resume checkpoint), the bundled INT8 model and its
sha256, and a new row in ``docs/training_log.md``; commit them afterwards.

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
CLI = [sys.executable, "-m", "crnn_ocr"]
DEVICE_DIR = ROOT / ".device"
"""What travels to a GPU machine beside the working tree (git-ignored): the synth pack."""
DEVICE_RUN = ROOT / "runs" / "crnn_lite_device"


def start(*train_args: str) -> None:
    """Resume the run in the background at low priority (``train_args`` go to ``crnn-ocr train``)."""
    RUN.mkdir(parents=True, exist_ok=True)
    if not (RUN / "last.pt").is_file() and COMMITTED.is_file():
        shutil.copy2(COMMITTED, RUN / "last.pt")
        print(f"seeded {RUN / 'last.pt'} from {COMMITTED.relative_to(ROOT)}")
    log = (RUN / "train.log").open("a")
    proc = subprocess.Popen(["nice", "-n", "10", *CLI, "train", "--config", str(CONFIG), "--resume", *train_args],
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    PIDFILE.write_text(str(proc.pid))
    print(f"training in the background, pid {proc.pid}; log: {RUN / 'train.log'}")


def status() -> None:
    """Print the newest progress line."""
    lines = (RUN / "train.log").read_text(errors="replace").splitlines() if (RUN / "train.log").exists() else []
    print(next((ln for ln in reversed(lines) if ln.startswith(("step", "  val"))), "no progress yet"))


def stop(timeout: float = 300.0) -> None:
    """SIGTERM the trainer (it saves a checkpoint first) and wait for it."""
    if not PIDFILE.exists():
        return
    pid = int(PIDFILE.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        PIDFILE.unlink()
        return
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(1)
    PIDFILE.unlink(missing_ok=True)


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


def add_row(doc: str, row: str) -> str:
    """``doc`` with ``row`` after the last row of its (first) table; notes below the table stay below."""
    lines = doc.splitlines()
    last = max((i for i, ln in enumerate(lines) if ln.startswith("|")), default=len(lines) - 1)
    return "\n".join([*lines[:last + 1], row, *lines[last + 1:]]) + "\n"


def trainer_hours(ckpt: dict) -> str:
    """Trainer wall time per device type, e.g. ``3.9 h CPU + 0.18 h GPU``."""
    from crnn_ocr.train.checkpoint import device_seconds

    secs = device_seconds(ckpt)
    names = {"cpu": "CPU", "cuda": "GPU"}
    return " + ".join(f"{v / 3600:.2f} h {names.get(k, k)}" for k, v in sorted(secs.items()) if v > 0) or "0 h"


def finish() -> None:
    """Stop, compact, export, quantise, evaluate and log."""
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

    if PIDFILE.exists():
        sys.exit("the trainer is running here: `campaign.py stop` first")
    ckpt = load_checkpoint(path)
    RUN.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, RUN / "last.pt")
    shutil.copy2(path, COMMITTED)
    print(f"adopted step {ckpt['step']:,} ({ckpt['samples_seen']:,} samples, {trainer_hours(ckpt)})")


if __name__ == "__main__":
    commands = {"start": start, "status": status, "stop": stop, "finish": finish, "device-pack": device_pack,
                "device-train": device_train, "device-train-det": device_train_det, "adopt": adopt}
    takes_args = {"start", "device-train", "device-train-det", "adopt"}
    if len(sys.argv) < 2 or sys.argv[1] not in commands or (len(sys.argv) > 2 and sys.argv[1] not in takes_args):
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(commands)}}} (start takes extra crnn-ocr train options)")
    commands[sys.argv[1]](*sys.argv[2:])
