"""Prometheus metrics of one app instance (own registry, so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Requests, latency, in-flight requests, queue depth, batch sizes and errors by type."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("crnn_ocr_requests", "HTTP requests answered", ["path", "status"], registry=r)
        self.latency = Histogram("crnn_ocr_request_seconds", "Request latency", ["path"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("crnn_ocr_in_flight", "OCR requests being processed", registry=r)
        self.queue_depth = Gauge("crnn_ocr_queue_depth", "Recognition jobs waiting for a batch", registry=r)
        self.errors = Counter("crnn_ocr_errors", "Refused or failed requests by type", ["type"], registry=r)
        self.batch_lines = Histogram("crnn_ocr_batch_lines", "Lines per recogniser batch",
                                     buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.lines = Counter("crnn_ocr_lines", "Text lines recognised", registry=r)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
