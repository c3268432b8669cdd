"""The JSONL output: append-only, one ``os.write`` per record, a torn last line cut off on start.

A record is appended with a single write to a file opened with ``O_APPEND``, so a run killed at any moment
leaves whole lines plus at most one partial last line (no newline); the next run cuts that line off and
skips every ``(source, page)`` already present. An exclusive lock stops two runs appending to one file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

Key = tuple[str, int | None]


def record_key(record: dict[str, Any]) -> Key:
    """The identity of a record: ``(source, page)``; ``page`` is None for a file that could not be opened."""
    return str(record["source"]), record.get("page")


def encode(record: dict[str, Any]) -> bytes:
    """One JSON line (UTF-8, characters not escaped, so Chinese text stays readable)."""
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def read_records(path: Path) -> list[dict[str, Any]]:
    """The whole records of a JSONL file; a torn or unparsable line is skipped."""
    if not path.is_file():
        return []
    out = []
    with path.open("rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue
    return out


def cut_torn_tail(path: Path) -> int:
    """Truncate a partial last line (no trailing newline) left by a killed run; returns the bytes removed."""
    if not path.is_file():
        return 0
    with path.open("r+b") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        block = 1 << 16
        end = size
        while end > 0:
            start = max(0, end - block)
            f.seek(start)
            chunk = f.read(end - start)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                keep = start + nl + 1
                break
            end = start
        else:
            keep = 0
        f.truncate(keep)
        return size - keep


class JsonlSink:
    """Appends records to a JSONL file and knows which ``(source, page)`` keys it already holds.

    Args:
        path: the output file (created with its folder if missing).
        retry_errors: drop earlier error records (rewriting the file atomically) so their pages run again.

    Use as a context manager; ``done`` is filled on enter.
    """

    def __init__(self, path: str | Path, retry_errors: bool = False) -> None:
        self.path = Path(path)
        self.retry_errors = retry_errors
        self.done: set[Key] = set()
        self.torn_bytes = 0
        self._fd: int | None = None

    def __enter__(self) -> JsonlSink:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._open_locked()
        self.torn_bytes = cut_torn_tail(self.path)
        records = read_records(self.path)
        if self.retry_errors and any("error" in r for r in records):
            records = [r for r in records if "error" not in r]
            self._rewrite(records)
        self.done = {record_key(r) for r in records}
        return self

    def _open_locked(self) -> None:
        import fcntl

        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise RuntimeError(f"another run is writing {self.path}") from None

    def _rewrite(self, records: list[dict[str, Any]]) -> None:
        """Replace the file by one holding ``records``: written aside, synced, renamed over (never half)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("wb") as f:
            f.write(b"".join(encode(r) for r in records))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self.__exit__()
        self._open_locked()

    def write(self, record: dict[str, Any]) -> None:
        """Append one record as one line, in one write (the kernel has it when this returns)."""
        self._write_all(encode(record))
        self.done.add(record_key(record))

    def _write_all(self, data: bytes) -> None:
        if self._fd is None:
            raise RuntimeError("the sink is not open")
        view = memoryview(data)
        while view:  # one call for a regular file; the loop only guards against a short write
            n = os.write(self._fd, view)
            view = view[n:]

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None
