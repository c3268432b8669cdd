"""The local engine: a process pool, one page pipeline per worker process, built once in its initializer."""

from __future__ import annotations

import multiprocessing as mp
import signal
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from crnn_ocr.batch.pages import PageJob, ocr_page

if TYPE_CHECKING:
    from crnn_ocr.pipeline import OCR

Task = tuple[str, int]

_worker: tuple[OCR, int] | None = None
"""This worker process's pipeline and PDF resolution (set by :func:`_init_worker`)."""


def _init_worker(job: PageJob) -> None:
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the pool
    _worker = (job.build(), job.dpi)


def _run_task(task: Task) -> dict[str, Any]:
    assert _worker is not None, "worker used before its initializer ran"
    ocr, dpi = _worker
    return ocr_page(ocr, task[0], task[1], dpi)


def pool_context() -> mp.context.BaseContext:
    """``forkserver`` where available (workers start from a small preloaded server), else ``spawn``.

    Never ``fork``: the parent may hold ONNX Runtime or OpenCV thread pools, which do not survive a fork.
    """
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["numpy", "cv2", "onnxruntime", "crnn_ocr.pipeline"])
        return ctx
    return mp.get_context("spawn")


def run_local(job: PageJob, tasks: Sequence[Task], workers: int, ordered: bool = False,
              ocr: OCR | None = None) -> Iterator[dict[str, Any]]:
    """Records of ``tasks``, as they finish (or in task order with ``ordered``).

    Args:
        job: how each worker builds its pipeline.
        tasks: ``(source, page)`` pairs.
        workers: worker processes; 1 runs in this process (no pool).
        ordered: yield in task order (a slow page holds back the pages after it).
        ocr: a pipeline already built from ``job``, used when running in this process.
    """
    if not tasks:
        return
    if workers <= 1 or len(tasks) == 1:
        ocr = ocr or job.build()
        for source, page in tasks:
            yield ocr_page(ocr, source, page, job.dpi)
        return
    with pool_context().Pool(min(workers, len(tasks)), initializer=_init_worker, initargs=(job,)) as pool:
        results = pool.imap(_run_task, tasks) if ordered else pool.imap_unordered(_run_task, tasks)
        yield from results
