"""Micro-batching: concurrent requests' lines are recognised together in one recogniser batch.

A request hands its prepared lines to :meth:`MicroBatcher.submit` and awaits the results. One collector
task takes the first waiting job, everything already queued behind it, and whatever else arrives within
``max_wait_s``, then runs one ``recognize(lines, widths)`` call in a thread pool. At most ``slots`` batches
run at once, so the event loop never blocks and CPU use stays bounded; while all slots are busy, new jobs
pile up and form the next, larger batch, which is where the throughput gain comes from.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from crnn_ocr.results import LineResult

RecognizeFn = Callable[[Sequence[np.ndarray], Sequence[float], Sequence[str | None], Sequence[bool]],
                       list[LineResult]]
T = TypeVar("T")


@dataclass
class _Job:
    lines: list[np.ndarray]
    widths: list[float]
    alphabet: str | None
    lexicon: bool
    future: asyncio.Future[list[LineResult]]


class MicroBatcher:
    """Coalesce recognition jobs from concurrent requests into batches.

    Args:
        recognize: ``(prepared lines, source widths, alphabets, lexicon flags) -> results`` in input order
            (``Recognizer.recognize_prepared``).
        executor: where batches run (threads: ONNX Runtime releases the GIL while it computes).
        slots: batches allowed to run at once.
        max_wait_s: how long to wait for more jobs once one is waiting.
        max_lines: most lines in one batch (a single larger job still runs, alone).
        on_batch: called with the number of lines of each batch (metrics).
    """

    def __init__(self, recognize: RecognizeFn, executor: Executor, slots: int = 1, max_wait_s: float = 0.005,
                 max_lines: int = 32, on_batch: Callable[[int], None] | None = None) -> None:
        self.recognize = recognize
        self.executor = executor
        self.max_wait_s = max_wait_s
        self.max_lines = max_lines
        self.on_batch = on_batch
        self._slots = asyncio.Semaphore(slots)
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._running: set[asyncio.Task[None]] = set()
        self._collector: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        """Jobs waiting for a batch."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start the collector task on the running loop."""
        if self._collector is None:
            self._collector = asyncio.get_running_loop().create_task(self._collect(), name="crnn-ocr-batcher")

    async def stop(self) -> None:
        """Let queued and running batches finish, then stop collecting."""
        while not self._queue.empty() or self._running:
            await asyncio.sleep(0.01)
        if self._collector is not None:
            self._collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._collector
            self._collector = None

    async def submit(self, lines: list[np.ndarray], widths: list[float], alphabet: str | None = None,
                     lexicon: bool = True) -> list[LineResult]:
        """Recognise ``lines`` in the next batch (with ``alphabet``, with or without the lexicon), in order."""
        if not lines:
            return []
        future: asyncio.Future[list[LineResult]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(lines, widths, alphabet, lexicon, future))
        return await future

    async def run_exclusive(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the pool under the same slot limit as batches (whole-page OCR with a detector)."""
        async with self._slots:
            return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            n = len(jobs[0].lines)
            deadline = loop.time() + self.max_wait_s
            while n < self.max_lines:
                if self._queue.empty():
                    timeout = deadline - loop.time()
                    if timeout <= 0:
                        break
                    try:
                        job = await asyncio.wait_for(self._queue.get(), timeout)
                    except TimeoutError:
                        break
                else:
                    job = self._queue.get_nowait()
                jobs.append(job)
                n += len(job.lines)
            await self._slots.acquire()
            task = loop.create_task(self._run(jobs))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, jobs: list[_Job]) -> None:
        try:
            live = [j for j in jobs if not j.future.cancelled()]
            if not live:
                return
            lines = [ln for j in live for ln in j.lines]
            widths = [w for j in live for w in j.widths]
            alphabets = [j.alphabet for j in live for _ in j.lines]
            lexicons = [j.lexicon for j in live for _ in j.lines]
            if self.on_batch is not None:
                self.on_batch(len(lines))
            try:
                results = await asyncio.get_running_loop().run_in_executor(
                    self.executor, self.recognize, lines, widths, alphabets, lexicons)
            except Exception as e:  # handed to every waiting request, which turns it into a 500
                for j in live:
                    if not j.future.done():
                        j.future.set_exception(e)
                return
            start = 0
            for j in live:
                if not j.future.done():
                    j.future.set_result(results[start: start + len(j.lines)])
                start += len(j.lines)
        finally:
            self._slots.release()
