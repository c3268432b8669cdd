"""A batch run from start to end: plan the pages still to do, run them on an engine, append the records."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crnn_ocr.batch.inputs import expand_inputs, page_count
from crnn_ocr.batch.output import JsonlSink, Key
from crnn_ocr.batch.pages import PageJob, error_record

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class BatchConfig:
    """One batch run.

    Args:
        inputs: files, folders (recursive) and glob patterns.
        out: the JSONL file; records already in it are kept and their pages skipped.
        job: the page pipeline every worker builds.
        workers: local worker processes or Ray actors (default: CPUs // ``job.threads``).
        engine: ``local`` (process pool) or ``ray`` (Ray Data actors).
        ordered: write records in input order (default: as they finish; the content is the same).
        retry_errors: run pages again whose earlier records are errors (those records are dropped).
        progress: show a progress bar on stderr.
    """

    inputs: Sequence[str | Path]
    out: Path
    job: PageJob = field(default_factory=PageJob)
    workers: int | None = None
    engine: str = "local"
    ordered: bool = False
    retry_errors: bool = False
    progress: bool = True


@dataclass(frozen=True)
class BatchSummary:
    """What a run did: pages found, skipped as already done, written (errors included) and its speed."""

    files: int
    pages: int
    skipped: int
    written: int
    errors: int
    seconds: float

    @property
    def pages_per_s(self) -> float:
        """Pages written per second of the run (planning and model loading included)."""
        return self.written / self.seconds if self.seconds > 0 else 0.0


def split_cores(workers: int | None, threads: int | None, cores: int) -> tuple[int, int]:
    """``(workers, threads)`` with ``workers x threads <= cores`` unless both are given.

    Pages are independent, so processes scale better than threads inside one small model: by default
    every core runs its own single-threaded worker.
    """
    if workers is None and threads is None:
        return max(1, cores), 1
    if workers is None:
        assert threads is not None
        return max(1, cores // max(1, threads)), max(1, threads)
    if threads is None:
        return max(1, workers), max(1, cores // max(1, workers))
    return max(1, workers), max(1, threads)


def plan(files: Sequence[Path], done: set[Key]) -> tuple[list[tuple[str, int]], list[dict[str, Any]], int, int]:
    """Tasks still to run, error records of files that cannot be opened, pages found and pages skipped."""
    tasks: list[tuple[str, int]] = []
    errors: list[dict[str, Any]] = []
    pages = skipped = 0
    for f in files:
        source = str(f)
        if (source, None) in done:  # a file reported unreadable by an earlier run
            skipped += 1
            continue
        try:
            n = page_count(f)
        except ValueError as e:
            errors.append(error_record(source, None, str(e)))
            continue
        pages += n
        for page in range(1, n + 1):
            if (source, page) in done:
                skipped += 1
            else:
                tasks.append((source, page))
    return tasks, errors, pages, skipped


def run_batch(cfg: BatchConfig) -> BatchSummary:
    """Run a batch job and append its records to ``cfg.out``.

    Safe to kill at any moment and to run again with the same arguments: pages already written are skipped.

    Raises:
        FileNotFoundError: an input or the model is missing.
        ValueError: a bad setting (engine, detector).
        RuntimeError: another run holds the output file.
        ImportError: ``engine="ray"`` without Ray installed (``pip install 'crnn-ocr[ray]'``).

    >>> run_batch(BatchConfig(["scans/"], Path("out.jsonl")))   # doctest: +SKIP
    """
    if cfg.engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {cfg.engine!r}")
    start = time.perf_counter()
    files = expand_inputs(cfg.inputs)
    with JsonlSink(cfg.out, retry_errors=cfg.retry_errors) as sink:
        tasks, file_errors, pages, skipped = plan(files, sink.done)
        for rec in file_errors:
            sink.write(rec)
        written, errors = len(file_errors), len(file_errors)
        if tasks:
            records = _engine_records(cfg, tasks)
            with _progress(cfg.progress, len(tasks)) as advance:
                for rec in records:
                    sink.write(rec)
                    written += 1
                    errors += "error" in rec
                    advance(errors)
    return BatchSummary(len(files), pages, skipped, written, errors, time.perf_counter() - start)


def _engine_records(cfg: BatchConfig, tasks: list[tuple[str, int]]) -> Iterator[dict[str, Any]]:
    workers = cfg.workers or 1
    if cfg.engine == "ray":
        from crnn_ocr.batch.ray_engine import connect, run_ray

        connect()
        if cfg.workers is None:
            import ray

            workers = max(1, int(ray.cluster_resources().get("CPU", 1)) // cfg.job.threads)
        return run_ray(cfg.job, tasks, workers, cfg.ordered)
    from crnn_ocr.batch.local import run_local

    # A pipeline built here first reports a bad model or detector setting once, before any worker starts.
    ocr = cfg.job.build()
    if workers > 1 and len(tasks) > 1:
        del ocr
        return run_local(cfg.job, tasks, workers, cfg.ordered)
    return run_local(cfg.job, tasks, 1, cfg.ordered, ocr=ocr)


class _progress:
    """A rich progress bar (pages, pages/s, ETA, errors) as a context giving an ``advance(errors)`` callback."""

    def __init__(self, enabled: bool, total: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(TextColumn("[bold]OCR[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"),
                            TimeRemainingColumn(), console=Console(stderr=True), disable=not enabled)
        self.task = self.bar.add_task("pages", total=total, rate="")
        self.start = time.perf_counter()
        self.done = 0

    def __enter__(self) -> Callable[[int], None]:
        self.bar.start()
        return self.advance

    def advance(self, errors: int) -> None:
        """One more page written."""
        self.done += 1
        elapsed = time.perf_counter() - self.start
        rate = f"{self.done / elapsed:.2f} pages/s" if elapsed > 0 else ""
        desc = f"pages ({errors} errors)" if errors else "pages"
        self.bar.update(self.task, advance=1, rate=rate, description=desc)

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()
