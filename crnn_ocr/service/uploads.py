"""Reading an upload safely: bounded body, in-memory multipart, image checks before and after decoding.

Nothing touches the disk: the original design saved every upload to one shared temporary file, a race
between concurrent users. Sizes are checked as early as possible: ``Content-Length`` before reading, the
byte count while reading, and the pixel count from the image header before any pixel is decoded, so a
small file that would expand to gigabytes (a decompression bomb) is refused cheaply.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np

from crnn_ocr.service.errors import ApiError

MULTIPART_OVERHEAD = 64 * 1024
"""Room for multipart headers and small form fields on top of the image byte limit."""
MAX_PARTS = 16
MAX_FIELD_BYTES = 4096


@dataclass
class Upload:
    """What a request carried: the image bytes (or None), its file name and any small form fields."""

    image: bytes | None = None
    filename: str | None = None
    fields: dict[str, str] = field(default_factory=dict)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"upload too large: the limit is {limit} bytes ({limit / 2**20:.1f} MiB)", "too_large")


def check_content_length(header: str | None, limit: int) -> None:
    """Refuse a request whose declared size is over the limit before reading any of it."""
    if header is None:
        return
    try:
        n = int(header)
    except ValueError:
        raise ApiError(400, "invalid Content-Length header", "bad_request") from None
    if n > limit + MULTIPART_OVERHEAD:
        raise _too_large(limit)


async def read_body(stream: AsyncIterator[bytes], limit: int) -> bytes:
    """The whole body, stopping with 413 as soon as it passes ``limit`` bytes (plus multipart overhead)."""
    buf = bytearray()
    cap = limit + MULTIPART_OVERHEAD
    async for chunk in stream:
        buf += chunk
        if len(buf) > cap:
            raise _too_large(limit)
    return bytes(buf)


def parse_multipart(body: bytes, content_type: str, limit: int) -> Upload:
    """Split a ``multipart/form-data`` body in memory: the ``image`` part and small text fields."""
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiError(400, "multipart body without a boundary", "bad_multipart")

    parts: list[tuple[dict[str, str], bytearray]] = []
    state: dict[str, bytes] = {"field": b"", "value": b""}
    headers: dict[str, str] = {}

    def on_part_begin() -> None:
        headers.clear()
        if len(parts) >= MAX_PARTS:
            raise ApiError(400, f"too many form fields (at most {MAX_PARTS})", "bad_multipart")
        parts.append(({}, bytearray()))

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        parts[-1][0][state["field"].decode("latin-1").lower()] = state["value"].decode("latin-1")
        state["field"], state["value"] = b"", b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        chunk = parts[-1][1]
        chunk += data[start:end]
        if len(chunk) > limit:
            raise _too_large(limit)

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_part_data": on_part_data,
    })
    try:
        parser.write(body)
        parser.finalize()
    except FormParserError:
        raise ApiError(400, "malformed multipart body", "bad_multipart") from None

    upload = Upload()
    for hdrs, data in parts:
        _, disp = parse_options_header(hdrs.get("content-disposition", ""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        if name == "image":
            if upload.image is not None:
                raise ApiError(400, "more than one 'image' field; send one image per request", "bad_multipart")
            upload.image = bytes(data)
            upload.filename = disp.get(b"filename", b"").decode("utf-8", "replace") or None
        elif name and len(data) <= MAX_FIELD_BYTES:
            upload.fields[name] = bytes(data).decode("utf-8", "replace")
    return upload


@dataclass(frozen=True)
class DecodedImage:
    """A decoded upload: the gray page (EXIF orientation applied) and facts about the source."""

    gray: np.ndarray
    format: str
    frames: int


def decode_image(data: bytes, max_pixels: int) -> DecodedImage:
    """Decode image bytes to gray uint8, refusing what the service cannot or should not decode.

    Checks, in order: empty data (400); a format Pillow cannot identify (415); a zero-size header (400);
    more than ``max_pixels`` pixels in the header (413, before decoding); a corrupt or truncated body (400).
    Animated images give their first frame; CMYK, 16-bit, palette and alpha images become gray; the EXIF
    orientation is applied so boxes match what a viewer shows.
    """
    from PIL import Image, UnidentifiedImageError

    from crnn_ocr.preprocess import ImageDecodeError, load_gray

    if not data:
        raise ApiError(400, "the image is empty (0 bytes)", "empty")
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise ApiError(413, f"image has too many pixels (limit {max_pixels})", "too_many_pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise ApiError(415, "not a supported image, or its header is malformed "
                            "(send PNG, JPEG, WebP, BMP, GIF or TIFF)", "not_an_image") from None
    with img:
        w, h = img.size
        if w <= 0 or h <= 0:
            raise ApiError(400, f"the image has zero size ({w}x{h})", "empty")
        if w * h > max_pixels:
            raise ApiError(413, f"image too large: {w}x{h} = {w * h} pixels, the limit is {max_pixels}",
                           "too_many_pixels")
        frames = int(getattr(img, "n_frames", 1) or 1)
        fmt = img.format or "unknown"
        try:
            img.seek(0)
            img.load()
            gray = load_gray(img)
        except (ImageDecodeError, OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError,
                TypeError, AttributeError, ZeroDivisionError):
            raise ApiError(400, f"corrupt or truncated {fmt} image", "corrupt_image") from None
        except MemoryError:
            raise ApiError(413, "image too large to decode", "too_many_pixels") from None
    if gray.ndim != 2 or gray.size == 0:
        raise ApiError(400, "the image decodes to no pixels", "empty")
    return DecodedImage(gray, fmt, frames)
