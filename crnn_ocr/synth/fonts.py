"""Font discovery (fontconfig) and per-face charset coverage from the cmap.

A line is only ever rendered with a face whose cmap has every one of its characters: a missing glyph
would draw a tofu box or nothing while the label still names the character. Coverage tables are cached on
disk (keyed by font path, face index, file mtime/size and charset hash) because reading the cmap of a
large CJK collection takes a noticeable fraction of a second per face.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from crnn_ocr.charset import Charset

_FC_FORMAT = "%{file}|%{index}|%{family[0]}|%{style[0]}|%{weight}|%{spacing}\n"
_CJK_MARK = "\u4e2d"  # a face with this glyph is treated as a CJK face


@dataclass(frozen=True)
class FontFace:
    """One face of a font file (``.ttc`` collections hold several; ``index`` selects it)."""

    path: str
    index: int
    family: str
    style: str
    bold: bool
    mono: bool

    @property
    def key(self) -> str:
        """Stable identity of the face, for cache keys and reports."""
        return f"{self.path}#{self.index}"

    @property
    def name(self) -> str:
        """Human-readable name."""
        return f"{self.family} {self.style}"


def parse_fc_list(output: str) -> list[FontFace]:
    """Faces from ``fc-list --format`` output in :data:`_FC_FORMAT` (malformed rows are skipped)."""
    faces: dict[tuple[str, int], FontFace] = {}
    for row in output.splitlines():
        parts = row.split("|")
        if len(parts) != 6 or not parts[0]:
            continue
        path, index, family, style, weight, spacing = parts
        if not path.lower().endswith((".ttf", ".ttc", ".otf", ".otc")):
            continue
        try:
            idx, wt = int(index or 0), int(float(weight or 80))
        except ValueError:
            continue
        face = FontFace(path, idx, family, style, bold=wt >= 180, mono=spacing.strip() == "100")
        faces.setdefault((path, idx), face)
    return [faces[k] for k in sorted(faces)]


def discover_fonts(exclude: Sequence[str] = ()) -> list[FontFace]:
    """Installed scalable faces from fontconfig, minus those whose name contains an ``exclude`` substring.

    Raises:
        RuntimeError: fontconfig is missing or finds no fonts (install the packages in ``packages.apt``).
    """
    try:
        out = subprocess.run(["fc-list", "--format", _FC_FORMAT], capture_output=True, text=True, timeout=60,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise RuntimeError(f"fontconfig (fc-list) failed: {e}; install the fonts listed in packages.apt") from e
    faces = [f for f in parse_fc_list(out) if not any(x in f.name for x in exclude)]
    if not faces:
        raise RuntimeError("no usable fonts found; install the fonts listed in packages.apt")
    return faces


def cache_dir() -> Path:
    """Where coverage tables and glyph atlases are cached (``$XDG_CACHE_HOME/crnn-ocr`` or ``~/.cache/crnn-ocr``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "crnn-ocr"


def read_cmap(face: FontFace) -> set[int]:
    """Code points that the face maps to a glyph."""
    from fontTools.ttLib import TTFont

    font = TTFont(face.path, fontNumber=face.index, lazy=True)
    try:
        return set(font.getBestCmap() or {})
    finally:
        font.close()


def _cache_key(face: FontFace, charset: Charset) -> str:
    st = os.stat(face.path)
    raw = f"{face.key}|{st.st_mtime_ns}|{st.st_size}|{charset.sha256}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def face_coverage(face: FontFace, charset: Charset, cache: Path | None = None) -> np.ndarray:
    """Boolean vector: which charset symbols the face has a glyph for (cached on disk when possible)."""
    path = None
    if cache is not None:
        path = cache / "coverage" / f"{_cache_key(face, charset)}.npy"
        try:
            cov = np.unpackbits(np.load(path))[: len(charset)].astype(bool)
            if cov.shape == (len(charset),):
                return cov
        except (OSError, ValueError):
            pass
    cmap = read_cmap(face)
    # A space has no outline, but every text font maps it.
    cov = np.fromiter((ord(s) in cmap for s in charset.symbols), dtype=bool, count=len(charset))
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, np.packbits(cov))
            os.replace(tmp, path)
        except OSError:
            pass  # read-only home: keep the table in memory only
    return cov


@dataclass(frozen=True)
class Glyph:
    """A rasterised glyph: coverage bitmap, its offset from the pen position on the baseline, advance."""

    bitmap: np.ndarray
    left: int
    top: int
    advance: float


def rasterise(font, ch: str) -> Glyph:
    """Render one character with Pillow (once per font, size and character; then cached)."""
    from PIL import Image, ImageDraw

    left, top, right, bottom = font.getbbox(ch, anchor="ls")
    w, h = max(right - left, 0), max(bottom - top, 0)
    if w == 0 or h == 0 or ch.isspace():
        return Glyph(np.zeros((0, 0), np.uint8), 0, 0, font.getlength(ch))
    img = Image.new("L", (w, h), 0)
    ImageDraw.Draw(img).text((-left, -top), ch, font=font, fill=255, anchor="ls")
    return Glyph(np.asarray(img).copy(), left, top, font.getlength(ch))


def embolden(g: Glyph, px: int) -> Glyph:
    """A bolder glyph: strokes grown by ``px`` pixels on every side (for faces without a bold weight)."""
    if g.bitmap.size == 0 or px <= 0:
        return g
    k = 2 * px + 1
    grown = cv2.dilate(cv2.copyMakeBorder(g.bitmap, px, px, px, px, cv2.BORDER_CONSTANT, value=0),
                       cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return Glyph(grown, g.left - px, g.top - px, g.advance + px)


ATLAS_VERSION = 1


def atlas_key(face: FontFace, size: int, charset: Charset) -> str:
    """Cache key of a glyph atlas: the font file's identity, the size, the charset and the rasteriser."""
    import PIL
    from PIL import features

    st = os.stat(face.path)
    raw = (f"{face.key}|{st.st_mtime_ns}|{st.st_size}|{size}|{charset.sha256}|{ATLAS_VERSION}|{PIL.__version__}"
           f"|{features.version('freetype2')}")
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def build_atlas(font, symbols: Sequence[str], covered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rasterise every covered symbol: a flat bitmap buffer and rows ``(offset, h, w, left, top, advance*64)``."""
    meta = np.zeros((len(symbols), 6), np.int64)
    chunks, off = [], 0
    for k, ch in enumerate(symbols):
        if not covered[k]:
            continue
        g = rasterise(font, ch)
        h, w = g.bitmap.shape
        meta[k] = (off, h, w, g.left, g.top, round(g.advance * 64))
        chunks.append(g.bitmap.ravel())
        off += h * w
    return (np.concatenate(chunks) if chunks else np.zeros(0, np.uint8)), meta


class Atlas:
    """All glyphs of one face at one size over the charset; arrays may be memory-mapped (shared by workers)."""

    def __init__(self, data: np.ndarray, meta: np.ndarray) -> None:
        # Plain ndarray views of the maps: np.memmap indexing is several times slower.
        self.data, self.meta = np.asarray(data), np.asarray(meta)
        self._glyphs: dict[int, Glyph] = {}

    def glyph(self, col: int) -> Glyph:
        """The glyph of charset column ``col``."""
        g = self._glyphs.get(col)
        if g is None:
            off, h, w, left, top, adv = self.meta[col].tolist()
            g = Glyph(self.data[off:off + h * w].reshape(h, w), left, top, adv / 64.0)
            self._glyphs[col] = g
        return g


class FontLibrary:
    """Faces, their coverage matrix over a charset, and glyph atlases per face and size.

    FreeType needs ~0.1-0.2 ms per CJK glyph, far more than pasting a bitmap, so a (face, size) in steady
    use is rasterised once over the whole charset into an atlas, stored in the cache folder and
    memory-mapped, so all worker processes of a machine share one copy. Without a writable cache the
    atlases live in memory. Loaded fonts, glyphs and atlases are dropped on pickling (workers reload
    them lazily).
    """

    max_fonts = 16
    max_glyphs = 50000
    atlas_after = 1024
    def __init__(self, faces: Sequence[FontFace], coverage: np.ndarray, charset: Charset,
                 cjk_weight: float = 1.0, weights: Mapping[str, float] | None = None) -> None:
        if coverage.shape != (len(faces), len(charset)):
            raise ValueError("coverage must be (faces, charset symbols)")
        self.faces = list(faces)
        self.coverage = coverage
        self.charset = charset
        self._col = {s: i for i, s in enumerate(charset.symbols)}
        mark = self._col.get(_CJK_MARK)
        self.is_cjk = coverage[:, mark] if mark is not None else np.zeros(len(faces), bool)
        self.weights = np.where(self.is_cjk, cjk_weight, 1.0)
        for k, face in enumerate(self.faces):
            for sub, mult in (weights or {}).items():
                if sub in face.name:
                    self.weights[k] *= mult
        self.cache: Path | None = None
        self._fonts: dict[tuple[int, int], object] = {}
        self._atlases: dict[tuple[int, int], Atlas] = {}
        self._glyphs: dict[tuple[int, int, str], Glyph] = {}
        self._misses: dict[tuple[int, int], int] = {}
        self._pid = os.getpid()

    @classmethod
    def build(cls, charset: Charset, exclude: Sequence[str] = (), cjk_weight: float = 1.0,
              weights: Mapping[str, float] | None = None, faces: Sequence[FontFace] | None = None,
              cache: str | Path | bool | None = True) -> FontLibrary:
        """Discover fonts and compute (or load cached) coverage.

        Faces covering nothing are dropped, and of faces with the same family and style (two versions of
        one font installed) only the one with the widest coverage is kept, so no design counts twice.
        """
        faces = list(faces) if faces is not None else discover_fonts(exclude)
        where = cache_dir() if cache is True else (Path(cache) if cache else None)
        cov = np.stack([face_coverage(f, charset, where) for f in faces]) if faces else np.zeros((0, len(charset)))
        best: dict[str, int] = {}
        for k, f in enumerate(faces):
            n = int(cov[k].sum())
            if n and (f.name not in best or n > cov[best[f.name]].sum()):
                best[f.name] = k
        keep = sorted(best.values())
        lib = cls([faces[k] for k in keep], cov[keep], charset, cjk_weight, weights)
        lib.cache = where
        return lib

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_fonts"], state["_atlases"], state["_glyphs"], state["_misses"] = {}, {}, {}, {}
        return state

    def _check_process(self) -> None:
        if self._pid != os.getpid():  # forked: do not share FreeType state with the parent (atlases are fine)
            self._fonts, self._pid = {}, os.getpid()

    def covered(self) -> np.ndarray:
        """Charset symbols that at least one face can render."""
        return self.coverage.any(axis=0)

    def missing(self) -> list[str]:
        """Charset symbols no face has (they are never sampled)."""
        return [s for s, c in zip(self.charset.symbols, self.covered(), strict=True) if not c]

    def col(self, ch: str) -> int:
        """Column of a charset symbol in the coverage matrix."""
        return self._col[ch]

    def has(self, face_index: int, ch: str) -> bool:
        """Whether a face has a glyph for ``ch`` (a space counts as present: it has no ink)."""
        k = self._col.get(ch)
        return ch == " " if k is None else bool(self.coverage[face_index, k])

    def faces_for(self, text: str) -> np.ndarray:
        """Indices of the faces that have every character of ``text``."""
        cols = [self._col[c] for c in set(text) if c in self._col]
        if not cols:
            return np.arange(len(self.faces))
        return np.flatnonzero(self.coverage[:, cols].all(axis=1))

    def pick(self, text: str, rng: np.random.Generator) -> int | None:
        """A random face index able to render ``text`` (weighted), or None if there is none."""
        idx = self.faces_for(text)
        if idx.size == 0:
            return None
        cum = np.cumsum(self.weights[idx])
        return int(idx[min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), idx.size - 1)])

    def font(self, face_index: int, size: int):
        """The Pillow font for a face at a pixel size, opened once per process."""
        from PIL import ImageFont

        self._check_process()
        key = (face_index, size)
        font = self._fonts.get(key)
        if font is None:
            if len(self._fonts) >= self.max_fonts:
                self._fonts.pop(next(iter(self._fonts)))
            face = self.faces[face_index]
            # Basic layout: per-glyph rendering needs no shaping and is twice as fast as raqm.
            font = ImageFont.truetype(face.path, size, index=face.index, layout_engine=ImageFont.Layout.BASIC)
            self._fonts[key] = font
        return font

    def atlas(self, face_index: int, size: int) -> Atlas:
        """The glyph atlas of a face at a size: from memory, from the disk cache, or rasterised now."""
        key = (face_index, size)
        at = self._atlases.get(key)
        if at is not None:
            return at
        face = self.faces[face_index]
        stem = self.cache / "atlas" / atlas_key(face, size, self.charset) if self.cache else None
        at = _load_atlas(stem) if stem else None
        if at is None:
            self._check_process()
            data, meta = build_atlas(self.font(face_index, size), self.charset.symbols, self.coverage[face_index])
            at = Atlas(data, meta)
            if stem is not None:
                _save_atlas(stem, data, meta)
                at = _load_atlas(stem) or at  # memory-mapped: shared between processes
                stem.with_suffix(".lock").unlink(missing_ok=True)
        self._atlases[key] = at
        return at

    def prepare(self, sizes: Sequence[int], workers: int = 1) -> int:
        """Build the atlases of every face at every size ahead of use; returns how many were built.

        With a disk cache this is done once per machine (in parallel with ``workers`` processes).
        """
        jobs = [(k, s) for k in range(len(self.faces)) for s in sizes
                if not (self.cache and _atlas_exists(self.cache / "atlas" / atlas_key(self.faces[k], s, self.charset)))]
        if workers > 1 and self.cache and len(jobs) > 1:
            import multiprocessing as mp

            with mp.get_context("fork").Pool(workers) as pool:
                pool.starmap(self.atlas, jobs, chunksize=1)
        for k, s in jobs:
            self.atlas(k, s)
        return len(jobs)

    def glyph_fn(self, face_index: int, size: int, stroke: int = 0) -> Callable[[str], Glyph]:
        """A fast ``char -> glyph`` function for one line: straight from the atlas when there is one."""
        at = self._atlases.get((face_index, size))
        if at is None:
            return lambda ch: self.glyph(face_index, size, ch, stroke)
        cols, memo = self._col, {}

        def get(ch: str) -> Glyph:
            g = memo.get(ch)
            if g is None:
                col = cols.get(ch)
                g = at.glyph(col) if col is not None else self.glyph(face_index, size, ch)
                g = memo[ch] = embolden(g, stroke) if stroke else g
            return g

        return get

    def glyph(self, face_index: int, size: int, ch: str, stroke: int = 0) -> Glyph:
        """The bitmap of ``ch`` in a face at a size, emboldened by ``stroke`` pixels.

        From the (face, size) atlas when one is built; otherwise rasterised alone and kept, and once a
        face and size has needed :attr:`atlas_after` glyphs its whole atlas is built (short runs and tests
        never pay for atlases they do not need). Either way the bitmap is the same.
        """
        key = (face_index, size)
        col = self._col.get(ch)
        at = self._atlases.get(key)
        if at is not None and col is not None:
            g = at.glyph(col)
            return embolden(g, stroke) if stroke else g
        gkey = (face_index, size, ch)
        g = self._glyphs.get(gkey)
        if g is None:
            misses = self._misses.get(key, 0)
            if col is not None and misses % 256 == 0:
                stem = self.cache / "atlas" / atlas_key(self.faces[face_index], size, self.charset) if self.cache \
                    else None
                at = _load_atlas(stem) if stem else None  # another process may have built it meanwhile
                # One process builds a given atlas; the others keep rasterising glyphs until it appears.
                if at is None and misses >= self.atlas_after and (stem is None or _claim(stem)):
                    at = self.atlas(face_index, size)
            if at is not None:
                self._atlases[key] = at
                g = at.glyph(col)
            else:
                self._check_process()
                if len(self._glyphs) >= self.max_glyphs:
                    self._glyphs.clear()
                g = rasterise(self.font(face_index, size), ch)
                self._glyphs[gkey] = g
                self._misses[key] = misses + 1
        return embolden(g, stroke) if stroke else g


def _claim(stem: Path, stale_s: float = 600.0) -> bool:
    """Whether this process may build the atlas (an exclusive lock file; a stale one is taken over)."""
    import time

    lock = stem.with_suffix(".lock")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        try:
            if time.time() - lock.stat().st_mtime > stale_s:
                lock.unlink(missing_ok=True)
                return _claim(stem, stale_s)
        except OSError:
            pass
        return False
    except OSError:
        return True  # no usable cache folder: build in memory


def _atlas_exists(stem: Path) -> bool:
    return stem.with_suffix(".meta.npy").is_file() and stem.with_suffix(".data.npy").is_file()


def _load_atlas(stem: Path) -> Atlas | None:
    try:
        if not _atlas_exists(stem):
            return None
        return Atlas(np.load(stem.with_suffix(".data.npy"), mmap_mode="r"),
                     np.load(stem.with_suffix(".meta.npy"), mmap_mode="r"))
    except (OSError, ValueError):
        return None


def _save_atlas(stem: Path, data: np.ndarray, meta: np.ndarray) -> None:
    """Write atomically (data first, meta last as the commit mark); a read-only cache is ignored."""
    try:
        stem.parent.mkdir(parents=True, exist_ok=True)
        for suffix, arr in ((".data.npy", data), (".meta.npy", meta)):
            tmp = stem.with_suffix(f".{os.getpid()}.tmp{suffix}")
            np.save(tmp, arr)
            os.replace(tmp, stem.with_suffix(suffix))
    except OSError:
        pass
