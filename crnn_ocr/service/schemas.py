"""Request options and JSON responses of the REST API (also the OpenAPI schema at ``/docs``)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PREPROCESS_STEPS = ("clahe", "denoise", "adaptive_threshold")
_STEP = "(" + "|".join(PREPROCESS_STEPS) + ")"
PREPROCESS_PATTERN = f"^(none|{_STEP}(,{_STEP})*)?$"
"""``none``, or a comma-separated list of steps (the empty string also means no steps)."""
ALPHABET_MAX_CHARS = 10000
"""Longest ``alphabet`` option: room for the whole charset, a bound on what a request can make us parse."""


class OCROptions(BaseModel):
    """Per-request options, from the query string or multipart form fields."""

    model_config = ConfigDict(extra="forbid")

    det: Literal["auto", "none"] = Field("auto", description="'none': the whole image is one line.")
    preprocess: tuple[str, ...] | None = Field(
        None, description="Comma-separated enhancement steps (clahe, denoise, adaptive_threshold); "
                          "'none' for none; unset: the model's own.")
    min_confidence: float = Field(0.0, ge=0.0, le=1.0, description="Leave out lines below this confidence.")
    chars: bool = Field(False, description="Include per-character results.")
    alphabet: str | None = Field(
        None, min_length=1, max_length=ALPHABET_MAX_CHARS,
        description="Read only these characters: 'ascii', 'digits' or the characters themselves (the space "
                    "is always allowed); unset: every character of the model.")
    lexicon: bool = Field(True, description="Correct English words misread by one letter from the lexicon "
                                            "(when the service has one); false: exactly what the model reads.")

    @field_validator("preprocess", mode="before")
    @classmethod
    def _split_steps(cls, v: object) -> object:
        if isinstance(v, str):
            if not re.match(PREPROCESS_PATTERN, v):
                raise ValueError(f"expected 'none' or a comma-separated list of {list(PREPROCESS_STEPS)}")
            v = () if v in ("", "none") else tuple(v.split(","))
        if isinstance(v, (list, tuple)):
            bad = sorted(set(v) - set(PREPROCESS_STEPS))
            if bad:
                raise ValueError(f"unknown preprocessing step(s) {bad}; choose from {list(PREPROCESS_STEPS)}")
        return v


class CharOut(BaseModel):
    """One character of a line."""

    char: str
    confidence: float
    x0: float | None = Field(None, description="Left edge along the line, in source pixels.")
    x1: float | None = Field(None, description="Right edge along the line, in source pixels.")


class LineOut(BaseModel):
    """One recognised line."""

    text: str
    confidence: float
    box: list[list[float]] | None = Field(None, description="Four [x, y] corners clockwise from top-left.")
    chars: list[CharOut] | None = None


class OCRResponse(BaseModel):
    """``text`` and ``time`` are the brief's contract; the rest is additive."""

    text: list[str] = Field(description="The recognised lines, in reading order.")
    time: float = Field(description="Server-side processing time in seconds.")
    lines: list[LineOut]
    width: int
    height: int
    model: str
    request_id: str


class HealthResponse(BaseModel):
    """Liveness: the process answers and a model is loaded."""

    status: Literal["ok"] = "ok"
    model: str


class ReadyResponse(BaseModel):
    """Readiness: the model has been warmed up and requests are served."""

    status: Literal["ready", "starting", "stopping"]
    model: str


class ErrorResponse(BaseModel):
    """Every error: a message for a person, and the request id to find the log line."""

    error: str
    request_id: str | None = None
