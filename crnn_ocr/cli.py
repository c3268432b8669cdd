"""The ``crnn-ocr`` command line: one thin command per pipeline stage; heavy imports stay inside commands."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from crnn_ocr.results import MIN_CONFIDENCE

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="crnn-ocr: Chinese/English OCR on CPU (synthesis, training, evaluation, export, serving).",
)
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks: results are written to files (--json).")
app.add_typer(bench_app, name="bench")

ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Model: .onnx file or .pt checkpoint (default: the bundled model)."),
]
ThreadsOpt = Annotated[int | None, typer.Option(help="Inference threads (default: physical cores).")]
DetModelOpt = Annotated[Path | None, typer.Option("--det-model", help="ONNX model of the 'db' detector.")]
AlphabetOpt = Annotated[str | None, typer.Option(
    help="Read only these characters: ascii | digits | the characters themselves (the space is always "
         "allowed), for documents or fields known to hold nothing else.")]
MinConfidenceOpt = Annotated[float, typer.Option(
    "--min-confidence", min=0.0, max=1.0, help="Drop lines found on a page that are read less confidently "
    "(handwriting, stamps, stains read as text); 0 keeps all.")]
LexiconOpt = Annotated[bool, typer.Option(
    "--lexicon/--no-lexicon", help="Read an English word the lexicon lacks as the lexicon word one letter "
                                   "away when the frames allow it (Totai -> Total); off: exactly what the "
                                   "model reads.")]


def fail(message: str, code: int = 2) -> None:
    """Print an error for a person and exit with ``code`` (CLI only; library code raises)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def load_recognizer(model: str | None, threads: int | None = None, batch_size: int = 32,
                    alphabet: str | None = None, latin_context_weight: float | None = None,
                    lexicon: bool = True):
    """A :class:`Recognizer` for an ONNX model, a torch checkpoint (``train`` extra) or the default."""
    from crnn_ocr.engine import Recognizer

    extra: dict[str, Any] = {"lexicon": lexicon}
    if latin_context_weight is not None:
        extra["latin_context_weight"] = latin_context_weight
    if model is not None and Path(model).suffix in (".pt", ".pth", ".ckpt"):
        from crnn_ocr.train.backend import TorchBackend

        return Recognizer(TorchBackend.from_checkpoint(model, threads=threads), batch_size=batch_size,
                          alphabet=alphabet, **extra)
    return Recognizer(model, threads=threads, batch_size=batch_size, alphabet=alphabet, **extra)


def detector_options(det_model: Path | None, threads: int | None) -> dict:
    """Keyword arguments for a detector that needs a model file (``db``); none for the classical one."""
    return {} if det_model is None else {"model": det_model, "threads": threads}


@app.command()
def predict(
    files: Annotated[list[Path], typer.Argument(help="Images or PDFs (every page) to read.")],
    model: ModelOpt = None,
    threads: ThreadsOpt = None,
    det: Annotated[str, typer.Option("--det", help="Text detector: classical | db | none (the image is one "
                                     "line).")] = "classical",
    det_model: DetModelOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="text | json | tsv")] = "text",
    draw: Annotated[Path | None, typer.Option("--draw", help="Write each page with boxes and text here (PNG); "
                                              "later pages get -2, -3... suffixes.")] = None,
    upright_check: Annotated[bool, typer.Option("--upright-check", help="Also read pages turned by 180 degrees "
                                                "and keep the more confident way (upside-down scans).")] = False,
    alphabet: AlphabetOpt = None,
    lexicon: LexiconOpt = True,
    keep_rules: Annotated[bool, typer.Option("--keep-rules", help="Keep lines that read as rules of marks "
                                             "only (*****, =====), dropped by default.")] = False,
    min_confidence: MinConfidenceOpt = MIN_CONFIDENCE,
) -> None:
    """Find and recognise the text lines of whole pages and print them in reading order."""
    import cv2

    from crnn_ocr.detect.draw import draw_lines
    from crnn_ocr.pipeline import OCR, format_page, load_pages, numbered_path
    from crnn_ocr.preprocess import ImageDecodeError

    if fmt not in ("text", "json", "tsv"):
        fail(f"--format must be text, json or tsv, not {fmt!r}")
    try:
        ocr = OCR(detector=det, recognizer=load_recognizer(model, threads, alphabet=alphabet, lexicon=lexicon),
                  upright_check=upright_check, keep_rules=keep_rules, min_confidence=min_confidence,
                  **detector_options(det_model, threads))
    except (FileNotFoundError, ValueError) as e:
        fail(str(e))
    status, drawn = 0, 0
    for f in files:
        try:
            for name, gray in load_pages(f):  # one page in memory at a time
                lines = ocr(gray)
                print(format_page(name, lines, fmt, with_name=len(files) > 1 or name != str(f)))
                if draw is not None:
                    cv2.imwrite(str(numbered_path(draw, drawn)), draw_lines(gray, lines))
                    drawn += 1
        except (ImageDecodeError, OSError, ImportError, RuntimeError) as e:
            typer.secho(f"{f}: {e}", fg=typer.colors.RED, err=True)
            status = 1
    raise typer.Exit(status)


@app.command("batch")
def batch_cmd(
    inputs: Annotated[list[str], typer.Argument(help="Images, PDFs (every page), folders (recursive), globs.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="JSONL file, one record per page; pages already in "
                                      "it are skipped (resume).")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="Recogniser .onnx (default: the bundled "
                                              "model).")] = None,
    det: Annotated[str, typer.Option("--det", help="Text detector: classical | db | none (each page is one "
                                     "line).")] = "classical",
    det_model: DetModelOpt = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes or Ray actors [default: cores // "
                                                "threads].")] = None,
    threads: Annotated[int | None, typer.Option(help="Inference threads per worker [default: 1, or cores // "
                                                "workers].")] = None,
    engine: Annotated[str, typer.Option(help="local (process pool) | ray (Ray Data actors; the ray extra).")]
    = "local",
    ordered: Annotated[bool, typer.Option("--ordered", help="Write records in input order (default: as pages "
                                          "finish; the records are the same).")] = False,
    retry_errors: Annotated[bool, typer.Option("--retry-errors", help="Run pages again whose earlier records "
                                               "are errors.")] = False,
    dpi: Annotated[int, typer.Option(help="Resolution PDF pages are rendered at.")] = 200,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")] = True,
    hocr: Annotated[Path | None, typer.Option("--hocr", help="Also write one hOCR file per input here.")] = None,
    pdf: Annotated[Path | None, typer.Option("--pdf", help="Also write one searchable PDF (page images + "
                                             "invisible text) per input here.")] = None,
    parquet: Annotated[Path | None, typer.Option("--parquet", help="Also write all records to this Parquet file "
                                                 "(needs pyarrow: the ray extra).")] = None,
    alphabet: AlphabetOpt = None,
    lexicon: LexiconOpt = True,
    min_confidence: MinConfidenceOpt = MIN_CONFIDENCE,
) -> None:
    """OCR many files into a JSONL file: resumable, errors recorded per file, on all cores or a Ray cluster."""
    from crnn_ocr.batch import BatchConfig, PageJob, run_batch
    from crnn_ocr.batch.export import export_documents, write_parquet
    from crnn_ocr.batch.output import read_records
    from crnn_ocr.batch.runner import split_cores
    from crnn_ocr.engine.session import physical_cores

    if engine == "ray" and workers is None:
        n_workers, n_threads = None, threads or 1  # actors: the cluster's CPUs // threads
    else:
        n_workers, n_threads = split_cores(workers, threads, physical_cores())
    job = PageJob(model=model, detector=det, detector_options={"model": str(det_model)} if det_model else {},
                  threads=n_threads, dpi=dpi, alphabet=alphabet, lexicon=lexicon, min_confidence=min_confidence)
    cfg = BatchConfig(inputs, out, job, workers=n_workers, engine=engine, ordered=ordered,
                      retry_errors=retry_errors, progress=progress)
    try:
        s = run_batch(cfg)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        fail(str(e))
    except KeyboardInterrupt:
        fail(f"interrupted: the pages in {out} are kept; run the same command to continue", code=130)
    except ImportError as e:
        fail(f"{e}; the ray engine needs: pip install 'crnn-ocr[ray]'")
    typer.secho(f"{s.files} files, {s.pages} pages: {s.skipped} already done, {s.written} written "
                f"({s.errors} errors) in {s.seconds:.1f} s, {s.pages_per_s:.2f} pages/s -> {out}", err=True)
    for fmt, folder in (("hocr", hocr), ("pdf", pdf)):
        if folder is not None:  # from the whole output file, so earlier runs' pages are included
            n, failed = export_documents(read_records(out), folder, fmt, dpi)
            typer.secho(f"{fmt}: {n} files -> {folder}" + (f" ({len(failed)} with errors skipped)" if failed
                                                          else ""), err=True)
    if parquet is not None:
        try:
            rows = write_parquet(read_records(out), parquet)
        except ImportError:
            fail("--parquet needs pyarrow: pip install 'crnn-ocr[ray]' (or pyarrow)")
        typer.secho(f"parquet: {rows} records -> {parquet}", err=True)


@app.command()
def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="Training config YAML (configs/*.yaml).")],
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT_DIR/last.pt if it exists.")] = False,
    max_minutes: Annotated[float | None, typer.Option(help="Stop (and save) after this many minutes.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop (and save) at this step.")] = None,
    init_from: Annotated[Path | None, typer.Option(help="Fine-tune: start from this checkpoint's weights.")] = None,
    extend_charset: Annotated[Path | None, typer.Option(help="File of characters to add to the charset.")] = None,
    data: Annotated[list[Path] | None, typer.Option("--data", help="Extra labels.tsv folder / LMDB source(s).")] = None,
    data_weight: Annotated[float, typer.Option(help="Weight of each --data source (synth weighs 1).")] = 1.0,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Run folder (checkpoints, logs).")] = None,
    device: Annotated[str | None, typer.Option(help="cpu | cuda")] = None,
    threads: Annotated[int | None, typer.Option(help="Torch threads.")] = None,
    workers: Annotated[int | None, typer.Option(help="Data worker processes.")] = None,
    extend_schedule: Annotated[int | None, typer.Option(
        help="With --resume: stretch the cosine schedule to end at this step, keeping the current learning "
             "rate (saved with the run).")] = None,
    anneal_to: Annotated[float | None, typer.Option(
        help="With --extend-schedule: a lower floor learning rate to decay to by that step (a cool-down "
             "for a run at its floor).")] = None,
) -> None:
    """Train or fine-tune a recogniser; resumable, saves on Ctrl-C/SIGTERM."""
    from crnn_ocr.charset import UnknownCharacterError
    from crnn_ocr.train.config import SourceConfig, TrainConfig
    from crnn_ocr.train.loop import train as run_training

    try:
        cfg = TrainConfig.load(config)
    except (OSError, ValueError) as e:
        fail(str(e))
    for key, value in (("max_minutes", max_minutes), ("max_steps", max_steps), ("device", device),
                       ("threads", threads), ("workers", workers), ("out_dir", str(out_dir) if out_dir else None)):
        if value is not None:
            setattr(cfg, key, value)
    for d in data or []:
        kind = "tsv" if (d / "labels.tsv").is_file() else "lmdb"
        cfg.sources.append(SourceConfig(kind=kind, path=str(d), weight=data_weight))
    extra = extend_charset.read_text(encoding="utf-8").replace("\n", "") if extend_charset else ""
    try:
        run_training(cfg, resume=resume, init_from=str(init_from) if init_from else None, extra_chars=extra,
                     extend_schedule=extend_schedule, anneal_to=anneal_to)
    except (UnknownCharacterError, ValueError) as e:
        fail(str(e))


@app.command("eval")
def eval_cmd(
    data: Annotated[list[Path], typer.Option("--data", "-d", help="labels.tsv folder(s) or LMDB set(s).")],
    model: ModelOpt = None,
    threads: ThreadsOpt = None,
    errors: Annotated[int, typer.Option(help="Print the N worst lines of each set.")] = 0,
    breakdown: Annotated[bool, typer.Option(help="Print error rates per character class (han, latin, digit, "
                                                 "punct) and the most frequent confusions of each set.")] = False,
    ignore_case: Annotated[bool, typer.Option(help="Fold case in --errors and --breakdown (sets labelled in "
                                                   "one case whatever the print); the figures stay.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write a JSON report here.")] = None,
    batch_size: Annotated[int, typer.Option(help="Lines per forward pass.")] = 32,
    alphabet: AlphabetOpt = None,
    latin_context_weight: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, help="Prior on CJK punctuation and letters in lines read as Latin script (default "
                               "0.25; 1 turns it off).")] = None,
    lexicon: LexiconOpt = True,
) -> None:
    """Measure line accuracy, CER and speed on labelled line sets."""
    from rich.console import Console
    from rich.table import Table

    from crnn_ocr.data.labels import read_labels_tsv
    from crnn_ocr.evaluation import evaluate_set, write_report

    try:
        rec = load_recognizer(model, threads, batch_size, alphabet, latin_context_weight, lexicon)
    except (FileNotFoundError, ValueError) as e:
        fail(str(e))
    results = []
    for d in data:
        try:
            items = [(x.path, x.text) for x in read_labels_tsv(d)]
        except (FileNotFoundError, ValueError) as e:
            fail(str(e))
        results.append(evaluate_set(lambda ps: [r.text for r in rec(ps)], items, d.name, errors=errors,
                                    breakdown=breakdown, ignore_case=ignore_case))
    table = Table(title=f"model: {rec.name} {rec.meta.version}")
    for col in ("set", "lines", "acc", "acc no-space", "alnum ci", "CER", "1-NED", "lines/s"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(r.name, str(r.lines), f"{r.acc:.1%}", f"{r.acc_nospace:.1%}", f"{r.acc_alnum_ci:.1%}",
                      f"{r.cer:.2%}", f"{r.ned:.3f}", f"{r.lines_per_s:.1f}")
    console = Console()
    console.print(table)
    for r in results:
        for e in r.errors:
            console.print(f"[{r.name}] {e['file']}\n  truth: {e['truth']}\n  pred:  {e['pred']}",
                          markup=False)
        if r.breakdown:
            console.print(_breakdown_table(r.name, r.breakdown))
            pairs = "  ".join(f"{a or '∅'}→{b or '∅'} {n}" for a, b, n in r.breakdown.confusions)
            console.print(f"[{r.name}] most frequent confusions (truth→pred count): {pairs}", markup=False)
    if json_out:
        write_report(results, json_out, {"model": rec.name, "version": rec.meta.version, "alphabet": alphabet,
                                         "latin_context_weight": rec.latin_context_weight,
                                         "lexicon": rec.lexicon is not None, "argv": sys.argv[1:]})


def _breakdown_table(name: str, b: Any) -> Any:
    from rich.table import Table

    table = Table(title=f"{name}: errors per character class")
    for col in ("class", "chars", "error rate", "substituted", "deleted", "inserted"):
        table.add_column(col, justify="right")
    for cls, c in b.by_class.items():
        table.add_row(cls, str(c["chars"]), f"{c['rate']:.1%}", str(c["sub"]), str(c["del"]), str(c["ins"]))
    return table


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [default: 127.0.0.1; env CRNN_OCR_HOST]; "
                                                  "0.0.0.0 exposes it.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port [default: 5000; env CRNN_OCR_PORT].")] = None,
    model: ModelOpt = None,
    workers: Annotated[int | None, typer.Option(help="Inference threads running batches at once (one model).")] = None,
    threads: ThreadsOpt = None,
    det: Annotated[str, typer.Option("--det", help="Text detector: classical | none (each image is one line).")]
    = "classical",
    api_key: Annotated[str | None, typer.Option(help="Require this key on /api/* (env CRNN_OCR_API_KEY).",
                                                envvar="CRNN_OCR_API_KEY", show_envvar=False)] = None,
    max_bytes: Annotated[int | None, typer.Option(help="Largest upload in bytes (default 20 MiB).")] = None,
    cors_origin: Annotated[list[str] | None, typer.Option(help="Allow this browser origin (repeatable).")] = None,
    log_level: Annotated[str, typer.Option(help="debug | info | warning")] = "info",
    alphabet: Annotated[str | None, typer.Option(help="Default alphabet of requests that give none: ascii | "
                                                 "digits | the characters themselves.")] = None,
    lexicon: LexiconOpt = True,
    min_confidence: MinConfidenceOpt = MIN_CONFIDENCE,
) -> None:
    """Start the REST API and web UI (http://HOST:PORT/); settings also come from CRNN_OCR_* variables."""
    from crnn_ocr.engine.session import default_threads
    from crnn_ocr.pipeline import OCR
    from crnn_ocr.service.server import serve as run_server
    from crnn_ocr.service.settings import Settings

    try:
        settings = Settings.from_env().updated(host=host, port=port, workers=workers, api_key=api_key,
                                               max_bytes=max_bytes,
                                               cors_origins=tuple(cors_origin) if cors_origin else None)
        rec = load_recognizer(model, threads or max(1, default_threads() // settings.workers), alphabet=alphabet,
                              lexicon=lexicon)
        ocr = OCR(detector=det, recognizer=rec, min_confidence=min_confidence)
    except FileNotFoundError as e:
        fail(f"{e}. Pass a model file with --model PATH." if model is None else str(e))
    except ValueError as e:
        fail(str(e))
    run_server(ocr, settings, log_level)


@bench_app.command("page")
def bench_page(
    data: Annotated[list[Path], typer.Option("--data", "-d", help="Folder(s) of NAME.(png|jpg) + NAME.json.")],
    model: ModelOpt = None,
    threads: ThreadsOpt = None,
    det: Annotated[str, typer.Option("--det", help="Our text detector: classical | db.")] = "classical",
    det_model: DetModelOpt = None,
    det_only: Annotated[bool, typer.Option("--det-only", help="Score detection alone (no recogniser).")] = False,
    rapidocr: Annotated[bool, typer.Option("--rapidocr/--no-rapidocr",
                                           help="Run RapidOCR beside ours when installed (bench extra).")] = True,
    true_boxes: Annotated[bool, typer.Option(
        "--true-boxes", help="Also read the labelled line boxes with our recogniser (a perfect detector): "
                             "what detection costs.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write a JSON report here.")] = None,
    md_out: Annotated[Path | None, typer.Option("--md", help="Write a Markdown table here.")] = None,
) -> None:
    """Page-level figures (detection P/R at IoU 0.5, line recall, character F1, s/page), ours vs RapidOCR."""
    from crnn_ocr.detect import create_detector
    from crnn_ocr.detect.bench import (
        detector_system,
        markdown_table,
        ocr_system,
        rapidocr_system,
        run_page_bench,
        true_box_system,
        write_json,
    )
    from crnn_ocr.pipeline import OCR

    if true_boxes and det_only:
        fail("--true-boxes reads the labelled boxes with the recogniser: it does not go with --det-only")
    try:
        if det_only:
            systems = {det: detector_system(create_detector(det, **detector_options(det_model, threads)))}
        else:
            ocr = OCR(detector=det, recognizer=load_recognizer(model, threads),
                      **detector_options(det_model, threads))
            systems = {f"crnn-ocr ({det})": ocr_system(ocr)}
            if true_boxes:
                systems["crnn-ocr (true boxes)"] = true_box_system(ocr)
    except (FileNotFoundError, ValueError) as e:
        fail(f"{e}. Use --det-only to score detection without a recogniser.")
    if rapidocr:
        try:
            systems["rapidocr" + (" det" if det_only else "")] = rapidocr_system(det_only, threads)
        except ImportError:
            typer.secho("rapidocr_onnxruntime is not installed (pip install 'crnn-ocr[bench]'): ours only",
                        fg=typer.colors.YELLOW, err=True)
    try:
        reports = [r for d in data for r in run_page_bench(d, systems)]
    except (FileNotFoundError, ValueError) as e:
        fail(str(e))
    table = markdown_table(reports)
    print(table, end="")
    if md_out:
        md_out.write_text(table, encoding="utf-8")
    if json_out:
        write_json(reports, json_out, {"argv": sys.argv[1:], "detector": det, "model": model})


@bench_app.command("train")
def bench_train(
    models: Annotated[list[str] | None, typer.Option("--model", help="Architectures (default: crnn_lite, crnn_vgg).")]
    = None,
    batch: Annotated[int, typer.Option(help="Batch size.")] = 64,
    width: Annotated[int, typer.Option(help="Line width in pixels (height 32).")] = 320,
    steps: Annotated[int, typer.Option(help="Timed training steps per model.")] = 5,
    threads: ThreadsOpt = None,
    sampled: Annotated[list[int] | None, typer.Option(
        "--sampled-classes", help="Also time a softmax over this many classes per step (repeatable).")] = None,
    amps: Annotated[list[str] | None, typer.Option(
        "--amp", help="Training precision: none | bf16 | auto (repeatable; default none).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results here.")] = None,
) -> None:
    """Training images/s and eager inference lines/s of the architectures on this machine."""
    import json

    from crnn_ocr.train.bench import bench_model, environment

    rows = []
    for name in models or ["crnn_lite", "crnn_vgg"]:
        for k in [0, *(sampled or [])]:
            for amp in amps or ["none"]:
                try:
                    r = bench_model(name, batch=batch, width=width, steps=steps, threads=threads,
                                    sampled_classes=k, amp=amp)
                except ValueError as e:
                    fail(str(e))
                rows.append(r)
                head = f"softmax over {k}" if k else "full softmax"
                prec = "fp32" if r["precision"] == "none" else r["precision"]
                print(f"{r['model']:10s} {r['params'] / 1e6:5.2f} M params  T={r['frames']:4d}  {head:18s} "
                      f"{prec:4s}  train {r['train_img_s']:6.1f} img/s  infer {r['infer_lines_s']:7.1f} lines/s  "
                      f"({r['threads']} threads)")
    if json_out:
        json_out.write_text(json.dumps({"env": environment(), "results": rows}, indent=2), encoding="utf-8")


@app.command()
def synth(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (images + labels.tsv, or LMDB).")]
    = None,
    count: Annotated[int, typer.Option("--count", "-n", help="Samples to have in the set (indices START..).")] = 1000,
    fmt: Annotated[str, typer.Option("--format", help="files | lmdb")] = "files",
    workers: Annotated[int, typer.Option(help="Rendering processes.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed: with the index, fixes every sample.")] = 0,
    start: Annotated[int, typer.Option(help="First sample index.")] = 0,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Synth YAML (default: bundled).")] = None,
    preview: Annotated[Path | None, typer.Option(help="Write a contact sheet PNG of --count samples instead.")]
    = None,
) -> None:
    """Write synthetic text lines (resumable: existing samples are skipped), or a --preview contact sheet."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from crnn_ocr.charset import default_charset
    from crnn_ocr.synth import SynthConfig, SynthStream
    from crnn_ocr.synth.generate import generate
    from crnn_ocr.synth.preview import write_preview

    try:
        cfg = SynthConfig.load(config)
    except (OSError, ValueError) as e:
        fail(str(e))
    if preview is not None:
        stream = SynthStream(cfg, charset=default_charset(), seed=seed)
        print(write_preview(stream, preview, count=count, start=start))
        return
    if out is None:
        fail("give --out DIR (or --preview PNG)")
    if fmt not in ("files", "lmdb"):
        fail(f"--format must be files or lmdb, not {fmt!r}")
    columns = (TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns) as bar:
        task = bar.add_task("synth", total=count)
        try:
            n = generate(out, count, cfg, default_charset(), seed=seed, fmt=fmt, workers=workers, start=start,
                         progress=lambda k: bar.advance(task, k))
        except ValueError as e:
            fail(str(e))
    print(f"{n} new samples written to {out} ({count - n} already there)")


@app.command("synth-pack")
def synth_pack(
    out: Annotated[Path, typer.Argument(help="Folder to write the pack into.")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Synth YAML (default: bundled).")] = None,
    workers: Annotated[int, typer.Option(help="Processes subsetting fonts in parallel.")] = 2,
) -> None:
    """Pack the synth fonts (subset to the charset) and corpus, to train where they are not installed.

    Then: CRNN_OCR_SYNTH_PACK=OUT crnn-ocr train ... on the other machine.
    """
    from crnn_ocr.charset import default_charset
    from crnn_ocr.synth.config import SynthConfig
    from crnn_ocr.synth.pack import PACK_ENV, build_pack

    if os.environ.get(PACK_ENV):
        fail(f"unset {PACK_ENV}: a pack is built from the installed fonts and corpus packages")
    try:
        cfg = SynthConfig.load(config)
        summary = build_pack(cfg, default_charset(), out, workers=max(1, workers))
    except (OSError, ValueError, RuntimeError) as e:
        fail(str(e))
    print(f"{summary['faces']} faces, {summary['total_bytes'] / 1e6:.1f} MB in {summary['out']}; "
          f"use it with {PACK_ENV}={summary['out']}")


@app.command("synth-pages")
def synth_pages(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for NAME.png + NAME.json pages.")] = None,
    count: Annotated[int, typer.Option("--count", "-n", help="Pages (indices START..).")] = 100,
    seed: Annotated[int, typer.Option(help="Seed: with the index, fixes every page.")] = 0,
    start: Annotated[int, typer.Option(help="First page index.")] = 0,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Page YAML (default: bundled pages.yaml).")]
    = None,
    preview: Annotated[Path | None, typer.Option(help="Write a contact sheet PNG of --count pages instead.")] = None,
) -> None:
    """Write synthetic pages with line boxes (the `bench page` format), or a --preview contact sheet."""
    from crnn_ocr.synth.page import PageConfig, PageStream, write_page, write_page_preview

    try:
        stream = PageStream(PageConfig.load(config), seed=seed)
    except (OSError, ValueError) as e:
        fail(str(e))
    if preview is not None:
        print(write_page_preview(stream, preview, count=count, start=start))
        return
    if out is None:
        fail("give --out DIR (or --preview PNG)")
    for i in range(start, start + count):
        write_page(stream, i, out)
    print(f"{count} pages written to {out}")


@app.command("train-det")
def train_det_cmd(
    config: Annotated[Path, typer.Option("--config", "-c", help="Detector training YAML (configs/dbnet.yaml).")],
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT_DIR/last.pt if it exists.")] = False,
    max_minutes: Annotated[float | None, typer.Option(help="Stop (and save) after this many minutes.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop (and save) at this step.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Run folder (checkpoints, logs).")] = None,
    device: Annotated[str | None, typer.Option(help="cpu | cuda")] = None,
    threads: Annotated[int | None, typer.Option(help="Torch threads.")] = None,
    workers: Annotated[int | None, typer.Option(help="Data worker processes.")] = None,
) -> None:
    """Train the DB text detector on synthetic pages (resumable; SIGTERM saves a checkpoint)."""
    from crnn_ocr.train.det_config import DetTrainConfig
    from crnn_ocr.train.det_loop import train_det

    try:
        cfg = DetTrainConfig.load(config)
    except (OSError, ValueError) as e:
        fail(str(e))
    for key, value in (("max_minutes", max_minutes), ("max_steps", max_steps), ("threads", threads),
                       ("workers", workers), ("device", device), ("out_dir", str(out_dir) if out_dir else None)):
        if value is not None:
            setattr(cfg, key, value)
    train_det(cfg, resume=resume)


@app.command("export-det")
def export_det(
    checkpoint: Annotated[Path, typer.Argument(help="Detector training checkpoint (.pt).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The .onnx file to write.")],
    ema: Annotated[bool, typer.Option("--ema/--no-ema", help="Export the EMA weights when present.")] = True,
    opset: Annotated[int, typer.Option(help="ONNX opset (>= 17).")] = 17,
) -> None:
    """Export a detector checkpoint to ONNX (dynamic page size, crnn_ocr.det metadata) and check parity."""
    from crnn_ocr.export.det_onnx import export_det_checkpoint

    try:
        rep = export_det_checkpoint(checkpoint, out, use_ema=ema, opset=opset)
    except (FileNotFoundError, ValueError, AssertionError) as e:
        fail(str(e))
    print(f"wrote {rep.path} ({rep.size_bytes / 2**20:.2f} MiB, opset {rep.opset}, "
          f"{'EMA' if rep.ema else 'raw'} weights); ORT vs torch on {rep.parity_sizes}: "
          f"max |dp| {rep.parity_max_abs_diff:.2e}")


@bench_app.command("synth")
def bench_synth(
    lines: Annotated[int, typer.Option(help="Timed lines.")] = 2000,
    warmup: Annotated[int, typer.Option(help="Untimed lines first.")] = 200,
    degrade: Annotated[float, typer.Option(help="Degradation strength (1 = every effect at its probability).")]
    = 1.0,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Synth YAML (default: bundled).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results here.")] = None,
) -> None:
    """Synthetic lines per second of one worker process (CPU time, so other load does not skew it)."""
    import json
    import os

    from crnn_ocr.charset import default_charset
    from crnn_ocr.synth import SynthConfig
    from crnn_ocr.synth.generate import bench

    try:
        cfg = SynthConfig.load(config).with_overrides(degrade=degrade)
    except (OSError, ValueError) as e:
        fail(str(e))
    r = bench(cfg, default_charset(), lines=lines, warmup=warmup, prepare_workers=os.cpu_count() or 1)
    print(f"synth: {r['lines_per_s_cpu']:.0f} lines/s per worker (CPU time; {r['lines_per_s_wall']:.0f} wall), "
          f"{r['ms_per_line_cpu']:.2f} ms/line, {r['mean_chars']:.1f} chars, height {r['mean_height']:.0f} px; "
          f"setup {r['resources_s']:.1f} s + {r['atlases_built']} atlases {r['atlases_s']:.1f} s")
    if json_out:
        json_out.write_text(json.dumps({"argv": sys.argv[1:], **r}, ensure_ascii=False, indent=2), encoding="utf-8")


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(help="Training checkpoint (.pt).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The .onnx file to write.")],
    ema: Annotated[bool, typer.Option("--ema/--no-ema", help="Export the EMA weights when present.")] = True,
    opset: Annotated[int, typer.Option(help="ONNX opset (>= 17).")] = 17,
    edge_margin: Annotated[float | None, typer.Option(
        help="Background added at a line's clean sides before reading, in line heights, written into the model's "
             "preprocessing (default: the checkpoint's).")] = None,
) -> None:
    """Export a checkpoint to a self-describing ONNX model and check it against PyTorch."""
    from crnn_ocr.export.onnx import export_checkpoint

    try:
        rep = export_checkpoint(checkpoint, out, use_ema=ema, opset=opset, edge_margin=edge_margin)
    except (FileNotFoundError, ValueError, AssertionError) as e:
        fail(str(e))
    print(f"wrote {rep.path} ({rep.size_bytes / 2**20:.2f} MiB, opset {rep.opset}, "
          f"{'EMA' if rep.ema else 'raw'} weights); ORT vs torch on widths {rep.parity_widths}: "
          f"max |dp| {rep.parity_max_abs_diff:.2e}, argmax agreement {rep.parity_argmax_agreement:.4%}")


@app.command()
def quantize(
    model: Annotated[Path, typer.Argument(help="fp32 .onnx exported by `crnn-ocr export`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The INT8 .onnx file to write.")],
    calib: Annotated[int, typer.Option(help="Synthetic calibration lines.")] = 256,
    data: Annotated[list[Path] | None, typer.Option("--data", help="labels.tsv folder(s) added to calibration.")]
    = None,
    mode: Annotated[str, typer.Option(help="dynamic (LSTM/MatMul weights) | static (QDQ, calibrated; LSTM fp32) "
                                           "| hybrid (static + LSTM weights).")] = "dynamic",
    check: Annotated[int, typer.Option(help="Compare with fp32 on this many of the calibration lines (0: skip).")]
    = 64,
    threads: ThreadsOpt = None,
) -> None:
    """Quantise a model to INT8 (metadata kept) and report agreement and speed against fp32."""
    from crnn_ocr.export.int8 import calibration_lines, compare, model_meta
    from crnn_ocr.export.int8 import quantize as run_quantize

    try:
        lines = calibration_lines(model_meta(model), calib, data or []) if mode != "dynamic" or check > 0 else []
        run_quantize(model, out, mode=mode, lines=lines)
    except (FileNotFoundError, ValueError) as e:
        fail(str(e))
    size = out.stat().st_size / 2**20
    calibrated = "" if mode == "dynamic" else f", calibrated on {len(lines)} lines"
    print(f"wrote {out} ({size:.2f} MiB, {mode}{calibrated})")
    if check > 0:
        c = compare(model, out, lines[:check], threads=threads or 1)
        print(f"vs fp32 on {c.lines} lines: same text {c.text_agreement:.1%}, same frame argmax "
              f"{c.frame_agreement:.2%}, {c.fp32_ms_per_line:.2f} -> {c.int8_ms_per_line:.2f} ms/line "
              f"({c.speedup:.2f}x), {c.fp32_bytes / 2**20:.2f} -> {c.int8_bytes / 2**20:.2f} MiB")


@bench_app.command("rec")
def bench_rec(
    data: Annotated[list[Path], typer.Option("--data", "-d", help="labels.tsv folder(s) of line images.")],
    model: Annotated[Path | None, typer.Option("--model", help="Our fp32 .onnx model.")] = None,
    int8: Annotated[Path | None, typer.Option("--int8", help="Our INT8 .onnx model.")] = None,
    ckpt: Annotated[Path | None, typer.Option("--ckpt", help="Checkpoint for PyTorch eager (train extra).")] = None,
    threads: Annotated[int, typer.Option(help="Threads for every system.")] = 1,
    batch_size: Annotated[int, typer.Option(help="Lines per batch in the batched runs.")] = 32,
    limit: Annotated[int, typer.Option(help="Lines per set (0: all).")] = 0,
    rapidocr: Annotated[bool, typer.Option("--rapidocr/--no-rapidocr", help="PP-OCRv4 rec (bench extra).")] = True,
    tesseract: Annotated[bool, typer.Option("--tesseract/--no-tesseract", help="Tesseract if installed.")] = True,
    raw: Annotated[bool, typer.Option("--raw/--no-raw", help="Also run the INT8 model without the lexicon "
                                                             "(what the lexicon costs and gains).")] = True,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write a JSON report here.")] = None,
    md_out: Annotated[Path | None, typer.Option("--md", help="Write a Markdown table here.")] = None,
) -> None:
    """Line recognisers side by side on the same images and threads: speed, peak RSS, size, accuracy."""
    import importlib.util

    from crnn_ocr.bench.rec import (
        SystemSpec,
        environment,
        load_sets,
        markdown,
        ratios,
        run_bench,
        tesseract_available,
        write_json,
    )

    specs = [SystemSpec(name, kind, str(path)) for name, kind, path in (
        ("crnn-ocr fp32 ONNX", "onnx", model), ("crnn-ocr INT8 ONNX", "onnx", int8),
        ("crnn-ocr PyTorch eager", "torch", ckpt)) if path is not None]
    if raw and int8 is not None:
        specs.insert(len([s for s in specs if s.kind == "onnx"]),
                     SystemSpec("crnn-ocr INT8 ONNX, no lexicon", "onnx", str(int8), lexicon=False))
    if ckpt is not None and importlib.util.find_spec("torch") is None:
        typer.secho("torch is not installed: skipping PyTorch eager", fg=typer.colors.YELLOW, err=True)
        specs = [s for s in specs if s.kind != "torch"]
    if rapidocr and importlib.util.find_spec("rapidocr_onnxruntime") is not None:
        specs.append(SystemSpec("PP-OCRv4 mobile rec (RapidOCR)", "rapidocr"))
    if tesseract and tesseract_available():
        specs.append(SystemSpec("Tesseract 5 (psm 7, chi_sim+eng)", "tesseract"))
    if not specs:
        fail("nothing to measure: give --model, --int8 or --ckpt, or install the bench extra")
    try:
        sets = load_sets(data, limit)
    except (FileNotFoundError, ValueError) as e:
        fail(str(e))
    results = run_bench(specs, sets, threads=threads, batch_size=batch_size,
                        log=lambda m: typer.secho(m, err=True))
    ratio = ratios(results, "crnn-ocr INT8 ONNX", "PP-OCRv4 mobile rec (RapidOCR)")
    meta = {**environment(threads, batch_size), "argv": sys.argv[1:], "sets": {k: len(v) for k, v in sets.items()},
            "int8_vs_ppocrv4_lines_per_s": ratio}
    table = markdown(results, ratio)
    print(table, end="")
    if md_out:
        md_out.write_text(table, encoding="utf-8")
    if json_out:
        write_json(results, json_out, meta)


def main() -> None:
    """Entry point for ``python -m crnn_ocr``."""
    app()


if __name__ == "__main__":
    main()
