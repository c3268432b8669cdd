"""The FastAPI application: ``create_app(ocr, settings)`` wires routes, limits, auth, metrics and the UI."""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import ValidationError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException

from crnn_ocr.engine.recognizer import Recognizer
from crnn_ocr.pipeline import OCR
from crnn_ocr.service.errors import ApiError
from crnn_ocr.service.logs import LOGGER_NAME, request_id_var
from crnn_ocr.service.metrics import Metrics
from crnn_ocr.service.runner import OcrRunner
from crnn_ocr.service.schemas import (
    ALPHABET_MAX_CHARS,
    PREPROCESS_PATTERN,
    ErrorResponse,
    HealthResponse,
    LineOut,
    OCROptions,
    OCRResponse,
    ReadyResponse,
)
from crnn_ocr.service.settings import Settings
from crnn_ocr.service.uploads import Upload, check_content_length, parse_multipart, read_body

log = logging.getLogger(LOGGER_NAME)

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_KNOWN_PATHS = {"/", "/api/ocr", "/health", "/ready", "/metrics", "/docs", "/openapi.json"}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in (
        (400, "Missing image field, bad option, corrupt or truncated image"),
        (401, "Missing or wrong API key (only when one is configured)"),
        (413, "Upload over the byte limit, or image over the pixel limit"),
        (415, "Not a supported image type"),
        (503, "Queue full (see Retry-After) or model not ready"),
    )
}
_OCR_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["image"],
                "properties": {
                    "image": {"type": "string", "format": "binary", "description": "The image file."},
                    "det": {"type": "string", "enum": ["auto", "none"]},
                    "preprocess": {"type": "string", "pattern": PREPROCESS_PATTERN},
                    "min_confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    "chars": {"type": "string", "enum": ["true", "false", "1", "0"]},
                    "alphabet": {"type": "string", "minLength": 1, "maxLength": ALPHABET_MAX_CHARS},
                    "lexicon": {"type": "string", "enum": ["true", "false", "1", "0"]},
                },
            }},
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    },
}


def static_dir() -> Path:
    """The web UI's files inside the package."""
    return Path(str(resources.files("crnn_ocr.service").joinpath("static")))


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON body of every error response."""
    return JSONResponse({"error": message, "request_id": request_id_var.get()}, status_code=status,
                        headers=headers)


class RequestContext:
    """ASGI middleware: request id, one structured log line and metrics per request, security headers."""

    def __init__(self, app: Callable[..., Awaitable[None]], metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        """Handle one ASGI connection scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex[:16]
        token = request_id_var.set(rid)
        path = scope.get("path", "")
        label = path if path in _KNOWN_PATHS else ("/static" if path.startswith("/static/") else "other")
        status = 500
        start = time.perf_counter()

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = rid
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                if label in ("/", "/static"):
                    headers["Content-Security-Policy"] = CSP
                    headers["X-Frame-Options"] = "DENY"
            await send(message)

        started = False

        async def send_tracked(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send_with_headers(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception:
            # Answered here rather than by Starlette's outer handler, so the 500 carries the request id,
            # and is logged once, with the traceback in the log only.
            self.metrics.errors.labels("internal").inc()
            log.exception("internal error")
            if not started:
                response = JSONResponse({"error": "internal server error; quote the request id when reporting it",
                                         "request_id": rid}, status_code=500)
                await response(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - start
            self.metrics.requests.labels(label, str(status)).inc()
            self.metrics.latency.labels(label).observe(elapsed)
            client = scope.get("client")
            log.info("request", extra={"fields": {
                "method": scope.get("method"), "path": path, "status": status,
                "duration_ms": round(elapsed * 1000, 2), "client": client[0] if client else None}})
            request_id_var.reset(token)


def create_app(ocr: OCR | Recognizer, settings: Settings | None = None) -> FastAPI:
    """Build the web service around an already loaded model.

    The model is passed in (never loaded at import), shared by all requests, and warmed up at startup;
    ``/ready`` turns 200 after that.

    Args:
        ocr: an :class:`OCR` (detector + recogniser) or a :class:`Recognizer` (each image is one line).
        settings: limits, API key, CORS...; default :class:`Settings()`.

    >>> from crnn_ocr import Recognizer                         # doctest: +SKIP
    >>> app = create_app(Recognizer("model.onnx"), Settings(api_key="s3cret"))  # doctest: +SKIP
    """
    settings = settings or Settings()
    runner = OcrRunner(ocr, workers=settings.workers, batch_wait_s=settings.batch_wait_ms / 1000,
                       max_batch_lines=settings.max_batch_lines)
    metrics = Metrics()
    state: dict[str, Any] = {"phase": "starting", "admitted": 0}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner.start(on_batch=metrics.batch_lines.observe)
        assert runner.infer_pool is not None
        await asyncio.get_running_loop().run_in_executor(runner.infer_pool, runner.warm_up)
        state["phase"] = "ready"
        log.info("ready", extra={"fields": {"model": runner.model_name, "detector": runner.detector,
                                             "workers": settings.workers}})
        try:
            yield
        finally:
            state["phase"] = "stopping"
            await runner.stop()
            log.info("stopped")

    app = FastAPI(title="crnn-ocr", version=_version(), lifespan=lifespan,
                  description="Chinese/English OCR: POST an image to /api/ocr, get its text lines.")
    app.state.runner = runner
    app.state.metrics = metrics
    app.state.settings = settings

    def require_api_key(request: Request) -> None:
        """``/api/*`` needs the key when one is configured; compared in constant time."""
        if settings.api_key is None:
            return
        given = request.headers.get("x-api-key")
        if given is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            given = token.strip() if scheme.lower() == "bearer" else None
        if given is None or not hmac.compare_digest(given.encode("utf-8"), settings.api_key.encode("utf-8")):
            raise ApiError(401, "missing or invalid API key (send 'Authorization: Bearer <key>' or 'X-API-Key')",
                           "unauthorized", {"WWW-Authenticate": "Bearer"})

    api = APIRouter(prefix="/api", dependencies=[Depends(require_api_key)])

    @api.post("/ocr", response_model=OCRResponse, response_model_exclude_none=True, responses=_ERRORS,
              openapi_extra=_OCR_BODY, summary="Recognise the text lines of an image")
    async def ocr_endpoint(
        request: Request,
        det: Literal["auto", "none"] | None = Query(None, description="'none': the whole image is one line."),
        preprocess: str | None = Query(None, pattern=PREPROCESS_PATTERN,
                                       description="Comma-separated steps: clahe, denoise, adaptive_threshold; "
                                                   "'none' for none."),
        min_confidence: float | None = Query(None, ge=0.0, le=1.0, description="Drop lines below this."),
        chars: bool | None = Query(None, description="Include per-character results."),
        alphabet: str | None = Query(None, min_length=1, max_length=ALPHABET_MAX_CHARS,
                                     description="Read only these characters: 'ascii', 'digits' or the "
                                                 "characters themselves (the space is always allowed)."),
        lexicon: bool | None = Query(None, description="Correct English words misread by one letter from the "
                                                       "lexicon (default true); false: the model's exact reading."),
    ) -> OCRResponse:
        """Multipart field ``image`` (or a raw ``image/*`` body) in; ``{"text": [...], "time": s, ...}`` out."""
        start = time.perf_counter()
        if state["phase"] != "ready":
            raise ApiError(503, f"the service is {state['phase']}, try again shortly", "not_ready",
                           {"Retry-After": str(settings.retry_after_s)})
        if state["admitted"] >= settings.max_queue:
            raise ApiError(503, "server busy: too many requests in progress, retry later", "overloaded",
                           {"Retry-After": str(settings.retry_after_s)})
        state["admitted"] += 1
        metrics.in_flight.inc()
        try:
            upload = await _read_upload(request, settings.max_bytes)
            query = {"det": det, "preprocess": preprocess, "min_confidence": min_confidence, "chars": chars,
                     "alphabet": alphabet, "lexicon": lexicon}
            options = _options(upload.fields, query)
            try:
                runner.recognizer.allowed_classes(options.alphabet)
            except ValueError as e:
                raise ApiError(400, f"invalid option: alphabet: {e}", "bad_option") from None
            assert upload.image is not None
            decoded, lines = await runner.read(asyncio.get_running_loop(), upload.image, settings.max_pixels,
                                               options)
        finally:
            state["admitted"] -= 1
            metrics.in_flight.dec()
        kept = [ln for ln in lines if ln.confidence >= options.min_confidence]
        metrics.lines.inc(len(kept))
        h, w = decoded.gray.shape
        return OCRResponse(
            text=[ln.text for ln in kept],
            time=round(time.perf_counter() - start, 4),
            lines=[LineOut.model_validate(ln.to_dict(chars=options.chars)) for ln in kept],
            width=w, height=h, model=runner.model_name, request_id=request_id_var.get() or "",
        )

    app.include_router(api)

    @app.get("/health", response_model=HealthResponse, summary="Liveness (never needs the API key)")
    async def health() -> HealthResponse:
        return HealthResponse(model=runner.model_name)

    @app.get("/ready", response_model=ReadyResponse, responses={503: {"model": ReadyResponse}},
             summary="Readiness: 200 once the model is warmed up")
    async def ready() -> JSONResponse:
        body = ReadyResponse(status=state["phase"], model=runner.model_name).model_dump()
        return JSONResponse(body, status_code=200 if state["phase"] == "ready" else 503)

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics_endpoint() -> Response:
        metrics.queue_depth.set(runner.batcher.queued if runner.batcher is not None else 0)
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(static_dir() / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=static_dir()), name="static")

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError) -> JSONResponse:
        metrics.errors.labels(exc.kind).inc()
        if exc.status >= 500:
            log.warning("refused", extra={"fields": {"reason": exc.kind}})
        return _error(exc.status, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.errors.labels("bad_option").inc()
        return _error(400, "invalid request: " + _describe(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        metrics.errors.labels(f"http_{exc.status_code}").inc()
        return _error(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "Retry-After"])
    app.add_middleware(RequestContext, metrics=metrics)
    return app


async def _read_upload(request: Request, max_bytes: int) -> Upload:
    """The image (and form fields) of a multipart or raw-image request, bounded by ``max_bytes``."""
    check_content_length(request.headers.get("content-length"), max_bytes)
    ctype = request.headers.get("content-type", "")
    media = ctype.split(";", 1)[0].strip().lower()
    body = await read_body(request.stream(), max_bytes)
    if media == "multipart/form-data":
        upload = parse_multipart(body, ctype, max_bytes)
    elif media.startswith("image/") or media == "application/octet-stream":
        upload = Upload(image=body)
    elif not body or media in ("", "application/x-www-form-urlencoded"):
        upload = Upload()
    else:
        raise ApiError(415, f"unsupported content type {media!r}: send multipart/form-data with an 'image' "
                            "field, or the raw image with an image/* content type", "bad_content_type")
    if upload.image is None:
        raise ApiError(400, "missing image: send the file in the multipart form field 'image'", "missing_image")
    if len(upload.image) > max_bytes:
        raise ApiError(413, f"upload too large: the limit is {max_bytes} bytes", "too_large")
    return upload


def _options(form: dict[str, str], query: dict[str, Any]) -> OCROptions:
    """Query parameters win over form fields of the same name; an invalid value in either is a 400."""
    fields: dict[str, Any] = {k: v for k, v in form.items() if k in OCROptions.model_fields}
    try:
        OCROptions.model_validate(fields)
        return OCROptions.model_validate({**fields, **{k: v for k, v in query.items() if v is not None}})
    except ValidationError as e:
        raise ApiError(400, "invalid option: " + _describe(e.errors()), "bad_option") from None


def _describe(errors: Any) -> str:
    """A one-line summary of pydantic errors, without echoing the input values back."""
    parts = []
    for err in list(errors)[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "body"))
        parts.append(f"{loc}: {err.get('msg', 'invalid')}" if loc else str(err.get("msg", "invalid")))
    return "; ".join(parts) or "invalid input"


def _version() -> str:
    from crnn_ocr import __version__

    return __version__
