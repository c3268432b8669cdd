"""Service settings: one frozen object built from CLI flags and ``CRNN_OCR_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

ENV_PREFIX = "CRNN_OCR_"


@dataclass(frozen=True)
class Settings:
    """Everything the web service can be told; defaults suit one CPU box behind a reverse proxy.

    Args:
        host, port: where ``crnn-ocr serve`` listens (loopback by default: exposing it is a choice).
        workers: inference threads, i.e. recogniser batches run at the same time (one model, shared).
        api_key: when set, ``/api/*`` requires it (``Authorization: Bearer`` or ``X-API-Key``).
        max_bytes: largest accepted upload (413 above).
        max_pixels: largest accepted image area, checked from the header before decoding (413 above).
        max_queue: requests admitted at once (decoding, waiting or running); more get a fast 503.
        batch_wait_ms: how long the batcher waits for more requests to join a batch.
        max_batch_lines: most lines recognised in one batch.
        cors_origins: allowed browser origins for cross-site calls; empty means CORS stays off.
        retry_after_s: ``Retry-After`` seconds sent with a 503.
        graceful_timeout_s: how long shutdown waits for in-flight requests.
    """

    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    api_key: str | None = None
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_queue: int = 64
    batch_wait_ms: float = 5.0
    max_batch_lines: int = 32
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    retry_after_s: int = 1
    graceful_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        for name in ("workers", "max_bytes", "max_pixels", "max_queue", "max_batch_lines"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.batch_wait_ms < 0:
            raise ValueError("batch_wait_ms must not be negative")
        if self.api_key is not None and not self.api_key.strip():
            object.__setattr__(self, "api_key", None)

    def updated(self, **changes: Any) -> Settings:
        """A copy with the given fields changed; ``None`` values are ignored (an unset CLI flag)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Defaults overridden by ``CRNN_OCR_<FIELD>`` variables (e.g. ``CRNN_OCR_API_KEY``).

        ``CRNN_OCR_CORS_ORIGINS`` is a comma-separated list. A malformed number raises ``ValueError``
        naming the variable, so a typo in a deployment fails at start rather than being ignored.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            try:
                if f.name == "cors_origins":
                    values[f.name] = tuple(o.strip() for o in raw.split(",") if o.strip())
                elif f.type in ("int", int):
                    values[f.name] = int(raw)
                elif f.type in ("float", float):
                    values[f.name] = float(raw)
                else:
                    values[f.name] = raw
            except ValueError:
                raise ValueError(f"{ENV_PREFIX}{f.name.upper()} must be a number, got {raw!r}") from None
        return cls(**values)
