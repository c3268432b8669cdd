# crnn-ocr web service: `docker build -t crnn-ocr . && docker run -p 5000:5000 crnn-ocr`
# then open http://localhost:5000 (API: POST /api/ocr, GET /health; docs at /docs).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CRNN_OCR_HOST=0.0.0.0 \
    CRNN_OCR_PORT=5000 \
    CRNN_OCR_THREADS=2 \
    OMP_NUM_THREADS=2

# Install the package (with the bundled INT8 model as package data) and its service extra, then drop the
# sources so only the installed copy remains; the build fails if the bundled model is missing or corrupt.
WORKDIR /build
COPY pyproject.toml README.md ./
COPY crnn_ocr ./crnn_ocr
RUN pip install ".[serve]" \
    && cd / && rm -rf /build \
    && python -c "from crnn_ocr.engine.recognizer import bundled_model_path; print(bundled_model_path())"

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin ocr
USER ocr
WORKDIR /home/ocr

EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('CRNN_OCR_PORT', '5000'), timeout=4)"]

# exec form: uvicorn is PID 1 and gets SIGTERM itself, finishing in-flight requests before it exits
STOPSIGNAL SIGTERM
CMD ["crnn-ocr", "serve"]
