"""Batch OCR of many files: one JSON line per page, resumable, on a local process pool or on Ray Data.

Torch-free. The pieces follow the run: ``inputs`` expands paths into ``(source, page)`` tasks, ``pages``
reads and recognises one page into a record, ``output`` appends records safely and knows which are done,
``local`` and ``ray_engine`` run the tasks, ``runner`` ties them together.
"""

from crnn_ocr.batch.inputs import expand_inputs, page_count
from crnn_ocr.batch.pages import PageJob, read_page
from crnn_ocr.batch.runner import BatchConfig, BatchSummary, run_batch

__all__ = ["BatchConfig", "BatchSummary", "PageJob", "expand_inputs", "page_count", "read_page", "run_batch"]
