"""LMDB line sets in the common CRNN layout, readable by other OCR toolkits too.

Keys (UTF-8): ``num-samples`` -> decimal count; ``image-%09d`` -> encoded image bytes (PNG/JPEG);
``label-%09d`` -> label text. Indices are 1-based as in the sets published with CRNN-style benchmarks;
the dataset class exposes them 0-based.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

NUM_KEY = b"num-samples"
DEFAULT_MAP_SIZE = 1 << 40  # sparse file: only what is written takes disk space


def image_key(n: int) -> bytes:
    """Key of the ``n``-th (1-based) image."""
    return b"image-%09d" % n


def label_key(n: int) -> bytes:
    """Key of the ``n``-th (1-based) label."""
    return b"label-%09d" % n


def is_lmdb(path: str | Path) -> bool:
    """Whether ``path`` is an LMDB environment folder (or its ``data.mdb``)."""
    p = Path(path)
    return (p / "data.mdb").is_file() or (p.name == "data.mdb" and p.is_file())


class LmdbWriter:
    """Append-friendly writer: entries are committed in batches; ``num-samples`` is the highest index.

    >>> with LmdbWriter("set.lmdb") as w:  # doctest: +SKIP
    ...     w.put(1, png_bytes, "发票")
    """

    def __init__(self, path: str | Path, map_size: int = DEFAULT_MAP_SIZE, commit_every: int = 500) -> None:
        import lmdb

        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.env = lmdb.open(str(self.path), map_size=map_size, subdir=True, lock=True, readahead=False,
                             meminit=False)
        self.commit_every = commit_every
        self._txn = self.env.begin(write=True)
        self._pending = 0
        raw = self._txn.get(NUM_KEY)
        self.count = int(raw) if raw else 0

    def has(self, n: int) -> bool:
        """Whether entry ``n`` (1-based) is already written (for resuming)."""
        return self._txn.get(label_key(n)) is not None

    def put(self, n: int, image: bytes, text: str) -> None:
        """Store entry ``n`` (1-based)."""
        self._txn.put(image_key(n), image)
        self._txn.put(label_key(n), text.encode("utf-8"))
        self.count = max(self.count, n)
        self._pending += 1
        if self._pending >= self.commit_every:
            self.commit()

    def commit(self) -> None:
        """Make everything written so far durable."""
        self._txn.put(NUM_KEY, str(self.count).encode())
        self._txn.commit()
        self._txn = self.env.begin(write=True)
        self._pending = 0

    def close(self) -> None:
        """Commit and close."""
        if self._txn is not None:
            self.commit()
            self._txn.abort()
            self._txn = None
        self.env.close()

    def __enter__(self) -> LmdbWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_READERS: dict[tuple[str, int], object] = {}


def _reader_env(path: Path):
    """One read-only environment per path and process (LMDB refuses to open an environment twice)."""
    import lmdb

    key = (str(path.resolve()), os.getpid())
    env = _READERS.get(key)
    if env is None:
        env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=256)
        _READERS[key] = env
    return env


class LmdbDataset:
    """A read-only LMDB line set: ``ds[i] -> (gray uint8 image, raw label)``, ``0 <= i < len(ds)``.

    The environment is opened lazily in each process (LMDB handles must not cross a fork), so the
    dataset can be pickled into DataLoader workers.
    """

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        self.path = p.parent if p.name == "data.mdb" else p
        if not is_lmdb(self.path):
            raise FileNotFoundError(f"no LMDB set (data.mdb) at {path}")
        self._env = None
        self._pid = -1
        with self._open().begin() as txn:
            raw = txn.get(NUM_KEY)
        self._len = int(raw) if raw else 0

    def _open(self):
        if self._env is None or self._pid != os.getpid():
            self._env = _reader_env(self.path)
            self._pid = os.getpid()
        return self._env

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_env"], state["_pid"] = None, -1
        return state

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i: int) -> tuple[np.ndarray, str]:
        if not 0 <= i < self._len:
            raise IndexError(f"index {i} out of range for {self._len} lines")
        with self._open().begin() as txn:
            img, label = txn.get(image_key(i + 1)), txn.get(label_key(i + 1))
        if img is None or label is None:
            raise KeyError(f"{self.path}: entry {i + 1} missing")
        arr = cv2.imdecode(np.frombuffer(img, np.uint8), cv2.IMREAD_GRAYSCALE)
        if arr is None:
            raise ValueError(f"{self.path}: entry {i + 1} is not a decodable image")
        return arr, label.decode("utf-8")
