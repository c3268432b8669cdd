"""Run the app under uvicorn: JSON logs, graceful shutdown, thread limits from the environment."""

from __future__ import annotations

import logging

from crnn_ocr.engine.recognizer import Recognizer
from crnn_ocr.pipeline import OCR
from crnn_ocr.service.logs import LOGGER_NAME, configure_logging
from crnn_ocr.service.settings import Settings


def serve(ocr: OCR | Recognizer, settings: Settings, log_level: str = "info") -> None:
    """Serve ``ocr`` until SIGINT/SIGTERM; in-flight requests get ``graceful_timeout_s`` to finish.

    One process, one model: concurrency comes from the micro-batcher's threads (``settings.workers``),
    not from forked processes that would each load the model.
    """
    import uvicorn

    from crnn_ocr.service.app import create_app

    configure_logging(log_level)
    app = create_app(ocr, settings)
    logging.getLogger(LOGGER_NAME).info("starting", extra={"fields": {
        "host": settings.host, "port": settings.port, "auth": settings.api_key is not None,
        "max_bytes": settings.max_bytes, "cors": list(settings.cors_origins)}})
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                            timeout_graceful_shutdown=int(settings.graceful_timeout_s), server_header=False,
                            proxy_headers=False, lifespan="on")
    uvicorn.Server(config).run()
