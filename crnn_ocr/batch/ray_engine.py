"""The Ray engine: the same page records computed by a pool of Ray Data actors, one pipeline per actor.

Tasks go in with ``ray.data.from_items``; ``map_batches`` runs :class:`RayPageOCR` (a stateful callable:
the model is loaded once per actor); records come back to the driver as JSON strings and are written by
the same sink as the local engine, so the output, its schema and resuming are identical. Files are read by
the actors: on a cluster, inputs and model must be on storage every node sees at the same path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from crnn_ocr.batch.pages import PageJob, ocr_page

Task = tuple[str, int]


class RayPageOCR:
    """A Ray Data actor: builds the page pipeline once, then turns batches of tasks into JSON records."""

    def __init__(self, job: PageJob) -> None:
        self.ocr = job.build()
        self.dpi = job.dpi

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``{"source", "page"}`` columns in, a ``record`` column of JSON strings out."""
        records = [json.dumps(ocr_page(self.ocr, str(s), int(p), self.dpi), ensure_ascii=False)
                   for s, p in zip(batch["source"], batch["page"], strict=True)]
        return {"record": np.array(records, dtype=object)}


def connect(num_cpus: int | None = None) -> None:
    """Join the running Ray instance.

    That is this process's, the cluster at ``RAY_ADDRESS`` (set by ``ray job submit``), or else a new local
    instance with ``num_cpus`` CPUs (default: all).
    """
    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init()  # a cluster's own settings apply
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False)


def run_ray(job: PageJob, tasks: Sequence[Task], actors: int, ordered: bool = False,
            batch_size: int = 1) -> Iterator[dict[str, Any]]:
    """Records of ``tasks`` computed by ``actors`` Ray actors of ``job.threads`` CPUs each.

    Args:
        job: how each actor builds its pipeline.
        tasks: ``(source, page)`` pairs.
        actors: size of the actor pool.
        ordered: yield in task order (Ray Data's ``preserve_order``).
        batch_size: pages per actor call (1 balances best; pages take far longer than a call's overhead).
    """
    if not tasks:
        return
    import ray.data

    ctx = ray.data.DataContext.get_current()
    saved = (ctx.execution_options.preserve_order, ctx.enable_progress_bars)
    ctx.execution_options.preserve_order = ordered
    ctx.enable_progress_bars = False  # the runner shows its own
    try:
        items = [{"source": s, "page": p} for s, p in tasks]
        ds = ray.data.from_items(items, override_num_blocks=min(len(items), max(1, actors) * 4))
        ds = ds.map_batches(RayPageOCR, fn_constructor_kwargs={"job": job}, batch_size=batch_size,
                            compute=ray.data.ActorPoolStrategy(size=max(1, actors)), num_cpus=job.threads,
                            batch_format="numpy")
        for row in ds.iter_rows():
            yield json.loads(row["record"])
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved
