"""Portable synthetic-data resources: render training lines where the font packages and corpora are not installed.

Rendering needs fonts (Debian packages, ~150 MB of CJK collections) and a text corpus built from PyPI packages
(jieba, wordfreq, Faker). A rented GPU machine often has neither and cannot install them. A *pack* holds what
the synth config actually uses: every face subset to the charset (a few MB per CJK face instead of a 20-30 MB
collection, outlines and hinting unchanged), the coverage matrix and the built corpus, with a key tying them to
the charset and the font/text settings they were built for.

    crnn-ocr synth-pack pack/                      # where the fonts are installed
    CRNN_OCR_SYNTH_PACK=pack crnn-ocr train ...     # anywhere else

The subset fonts keep their name tables (copyright and licence strings), and the pack's ``LICENCES.md`` lists
every font with its source, copyright and licence (plus the Debian packages' copyright files); see
docs/licences.md.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from crnn_ocr.charset import Charset
from crnn_ocr.synth.config import SynthConfig
from crnn_ocr.synth.fonts import FontFace, FontLibrary, cache_dir

if TYPE_CHECKING:
    from crnn_ocr.synth.stream import Resources

PACK_ENV = "CRNN_OCR_SYNTH_PACK"
MANIFEST = "pack.pkl"
PACK_VERSION = 1


def resource_settings(cfg: SynthConfig, charset: Charset) -> tuple:
    """What fonts, coverage and corpus depend on: the charset and the font and corpus settings.

    Not the weights of text sources, effects or layout. Keys both the per-process resource cache and packs.
    """
    t, f = cfg.text, cfg.fonts
    return (charset.sha256, tuple(f.exclude), f.cjk_weight, tuple(sorted(f.weights.items())), t.zh_freq_power,
            t.en_top_n, t.en_rank_power, t.faker_pool)


def pack_key(cfg: SynthConfig, charset: Charset) -> str:
    """The pack's key: :func:`resource_settings` and the pack format version."""
    return hashlib.sha256(repr((PACK_VERSION, *resource_settings(cfg, charset))).encode()).hexdigest()[:32]


def _slug(face: FontFace) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", face.name).strip("-")


def subset_face(face: FontFace, codepoints: list[int], out: str, licence_text: str = "") -> int:
    """Write one face of ``face.path`` holding only ``codepoints`` as a standalone font; returns its size.

    Reserved Font Names declared in the font's own notices or in ``licence_text`` (its package's copyright
    file) are replaced in the subset's names: the OFL forbids them on modified versions.
    """
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(face.path, fontNumber=face.index, lazy=False)
    opts = subset.Options()
    opts.name_IDs, opts.name_languages, opts.name_legacy = ["*"], ["*"], True  # keep copyright/licence names
    opts.layout_features = []  # lines are laid out glyph by glyph (Pillow's basic layout): no shaping tables
    opts.notdef_outline, opts.hinting, opts.glyph_names = True, True, False
    sub = subset.Subsetter(opts)
    sub.populate(unicodes=codepoints)
    sub.subset(font)
    rename_reserved(font, licence_text)
    font.save(out)
    font.close()
    return os.path.getsize(out)


_RFN = re.compile(r"with Reserved Font (?:Names? )?([^.\n]+)")  # the OFL's declaration after a copyright line
_NAME_IDS = (1, 3, 4, 6, 16, 17, 18, 21, 22)  # family, unique id, full, PostScript, typographic names


def reserved_names(copyright_text: str) -> list[str]:
    """Reserved Font Names declared in an OFL copyright line (``with Reserved Font Name Liberation.``)."""
    names: list[str] = []
    for m in _RFN.finditer(copyright_text):
        names += [n.strip(" \"'") for n in re.split(r",|\band\b", m.group(1)) if n.strip(" \"'")]
    return names


def rename_reserved(font: Any, licence_text: str = "", replacement: str = "Packed") -> list[str]:
    """Replace Reserved Font Names in a modified (subset) font's names, as the OFL requires; returns them."""
    table = font["name"]
    notices = "\n".join(rec.toUnicode() for rec in table.names if rec.nameID in (0, 13)) + "\n" + licence_text
    reserved = sorted(set(reserved_names(notices)), key=len, reverse=True)
    for rec in table.names:
        if rec.nameID in _NAME_IDS:
            text = rec.toUnicode()
            for name in reserved:
                text = text.replace(name, replacement).replace(name.replace(" ", ""), replacement)
            rec.string = text
    return reserved


def _subset_job(args: tuple[FontFace, list[int], str, str]) -> int:
    return subset_face(*args)


def debian_package(path: str) -> str | None:
    """The Debian package that installed a file (``dpkg -S``), or None elsewhere."""
    import subprocess

    try:
        owner = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return owner.stdout.split(":", 1)[0].strip() if owner.returncode == 0 and owner.stdout else None


def package_copyright(package: str | None) -> str:
    """The text of a Debian package's copyright file ('' when unknown)."""
    path = Path("/usr/share/doc") / package / "copyright" if package else None
    try:
        return path.read_text(encoding="utf-8", errors="replace") if path else ""
    except OSError:
        return ""


def build_pack(cfg: SynthConfig, charset: Charset, out: str | Path, workers: int = 1,
               progress: Callable[[str], Any] = print, resources: Resources | None = None) -> dict[str, Any]:
    """Write a pack for ``cfg`` and ``charset`` into the folder ``out``; returns a summary.

    The faces, coverage and corpus are the ones built here from the installed fonts (or ``resources``), so
    lines rendered from the pack come from the same distribution as lines rendered without it.
    """
    from crnn_ocr.synth.stream import build_resources

    out = Path(out)
    (out / "fonts").mkdir(parents=True, exist_ok=True)
    res = resources if resources is not None else build_resources(cfg, charset)
    lib = res.fonts
    jobs, faces = [], []
    packages = {f.path: debian_package(f.path) for f in lib.faces}
    licences = {p: package_copyright(p) for p in set(packages.values()) if p}
    for k, face in enumerate(lib.faces):
        cps = sorted({ord(s) for s, ok in zip(charset.symbols, lib.coverage[k], strict=True) if ok and len(s) == 1})
        ext = ".otf" if _is_cff(face) else ".ttf"
        rel = f"fonts/{k:02d}-{_slug(face)}{ext}"
        jobs.append((face, cps, str(out / rel), licences.get(packages[face.path], "")))
        faces.append(replace(face, path=rel, index=0))
    sizes = []
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for k, size in enumerate(pool.map(_subset_job, jobs)):
                sizes.append(size)
                progress(f"[{k + 1}/{len(jobs)}] {lib.faces[k].name}: {size / 1e6:.2f} MB")
    else:
        for k, job in enumerate(jobs):
            sizes.append(_subset_job(job))
            progress(f"[{k + 1}/{len(jobs)}] {lib.faces[k].name}: {sizes[-1] / 1e6:.2f} MB")
    write_licences(out, lib.faces, [f.path for f in faces], licences)
    manifest = {"version": PACK_VERSION, "key": pack_key(cfg, charset), "faces": faces,
                "coverage": np.packbits(lib.coverage, axis=1), "n_symbols": len(charset), "corpus": res.corpus}
    tmp = out / f"{MANIFEST}.tmp"
    with tmp.open("wb") as f:
        pickle.dump(manifest, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, out / MANIFEST)
    total = sum(sizes) + (out / MANIFEST).stat().st_size
    return {"faces": len(faces), "font_bytes": sum(sizes), "total_bytes": total, "out": str(out)}


def font_notices(path: str, index: int = 0) -> dict[str, str]:
    """Copyright, licence and licence URL from a font's name table (IDs 0, 13 and 14)."""
    from fontTools.ttLib import TTFont

    font = TTFont(path, fontNumber=index, lazy=True)
    try:
        name = font["name"]
        return {k: (name.getDebugName(i) or "").strip() for k, i in
                (("copyright", 0), ("licence", 13), ("licence_url", 14))}
    finally:
        font.close()


def write_licences(out: Path, originals: list[FontFace], rel_paths: list[str], packages: dict[str, str]) -> None:
    """``LICENCES.md``: every packed font with its source file, copyright and licence text.

    The licences (OFL, Arphic PL, GPL with font exception, Bitstream Vera) ask that copies, modified or not,
    carry their notices; the subset fonts also keep their own name tables. The Debian packages' copyright
    files (``packages``: package name -> text) are copied too.
    """
    lines = ["# Fonts in this pack", "", "Each font is one face of the source file, subset to the charset "
             "(outlines unchanged; Reserved Font Names replaced by 'Packed').", ""]
    for face, rel in zip(originals, rel_paths, strict=True):
        n = font_notices(face.path, face.index)
        lines += [f"## {rel}", "", f"- face: {face.name} (from {Path(face.path).name}, face {face.index})",
                  f"- copyright: {n['copyright'] or 'not stated'}", f"- licence URL: {n['licence_url'] or '-'}",
                  "", "```", n["licence"] or "not stated in the font", "```", ""]
    (out / "LICENCES.md").write_text("\n".join(lines), encoding="utf-8")
    for pkg, text in sorted(packages.items()):
        if text:
            (out / "licences").mkdir(exist_ok=True)
            (out / "licences" / f"{pkg}.copyright").write_text(text, encoding="utf-8")


def _is_cff(face: FontFace) -> bool:
    from fontTools.ttLib import TTFont

    font = TTFont(face.path, fontNumber=face.index, lazy=True)
    try:
        return "CFF " in font or "CFF2" in font
    finally:
        font.close()


def load_pack(path: str | Path, cfg: SynthConfig, charset: Charset) -> Resources:
    """The fonts and corpus of a pack, checked against the config and charset it must serve.

    Raises:
        ValueError: the folder is not a pack, or it was built for another charset or font/corpus settings.
    """
    from crnn_ocr.synth.stream import Resources

    root = Path(path).resolve()
    try:
        with (root / MANIFEST).open("rb") as f:
            m = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError) as e:
        raise ValueError(f"{root} is not a synth pack ({MANIFEST} unreadable: {e}); build one with "
                         "`crnn-ocr synth-pack`") from e
    if not isinstance(m, dict) or m.get("version") != PACK_VERSION:
        raise ValueError(f"{root}: unsupported synth pack version; rebuild it with `crnn-ocr synth-pack`")
    if m["key"] != pack_key(cfg, charset):
        raise ValueError(f"{root} was built for another charset or other font/corpus settings; rebuild it with "
                         "`crnn-ocr synth-pack` from the same config")
    faces = [replace(f, path=str(root / f.path)) for f in m["faces"]]
    missing = [f.path for f in faces if not os.path.isfile(f.path)]
    if missing:
        raise ValueError(f"{root}: font files missing from the pack: {', '.join(missing[:3])}")
    coverage = np.unpackbits(m["coverage"], axis=1)[:, : m["n_symbols"]].astype(bool)
    lib = FontLibrary(faces, coverage, charset, cfg.fonts.cjk_weight, cfg.fonts.weights)
    lib.cache = cache_dir()
    return Resources(lib, m["corpus"])
