"""Appearance and degradations: ink/background composition, lighting, blur, noise, compression.

Each function takes the image (float32 gray 0..255, or a uint8 mask) and the sample's rng, and returns a
new array; the stream decides which ones run from the probabilities in ``synth.yaml``.
"""

from __future__ import annotations

import cv2
import numpy as np


def ink_bleed(mask: np.ndarray, rng: np.random.Generator, thin: bool = False) -> np.ndarray:
    """Soften and thicken strokes as ink spreading in paper (or thin them, as faded toner).

    ``thin`` strokes (light faces, small sizes) are only thickened: thinning would erase them and leave
    a label the image no longer shows.
    """
    sigma = rng.uniform(0.5, 1.2)
    soft = cv2.GaussianBlur(mask, (0, 0), sigma).astype(np.float32)
    lo = rng.uniform(5, 30) if thin else rng.uniform(10, 80)
    hi = lo + rng.uniform(60, 140)
    return np.clip((soft - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)


def morph(mask: np.ndarray, rng: np.random.Generator, size: int, thin: bool = False) -> np.ndarray:
    """Erode or dilate strokes by a pixel (bold print, worn print); erosion only where strokes are thick."""
    k = np.ones((2, 2), np.uint8) if rng.random() < 0.7 else cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    if not thin and size >= 30 and rng.random() < 0.5:
        return cv2.erode(mask, k)
    return cv2.dilate(mask, k)


def ink_dropout(mask: np.ndarray, rng: np.random.Generator, height: float) -> np.ndarray:
    """Patchy ink: holes inside the strokes, as worn thermal heads, dry ribbons and overexposed scans leave.

    A smooth random field with blobs of 4-12% of the text height decides where ink did not transfer; 12-30%
    of the inked area is lost, in soft-edged patches, so letters are broken but stay legible.

    Args:
        mask: uint8 ink coverage (255 = ink).
        rng: the sample's generator.
        height: text height in pixels (capitals and hanzi above the baseline); the blob size scales with it.

    Returns:
        A uint8 mask of the same shape, nowhere darker than the input.
    """
    h, w = mask.shape
    grain = max(1.0, rng.uniform(0.04, 0.12) * height)
    coarse = rng.random((max(2, round(h / grain)), max(2, round(w / grain)))).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    inked = mask > 127
    if not inked.any():
        return mask.copy()
    cut = float(np.quantile(field[inked], rng.uniform(0.12, 0.3)))
    keep = np.clip((field - cut) / 0.06 + 0.5, 0.0, 1.0)  # a soft edge about a pixel wide
    return (mask.astype(np.float32) * keep).astype(np.uint8)


def faint_marks(mask: np.ndarray, rng: np.random.Generator, height: float) -> np.ndarray:
    """Print the small detached marks lighter than the letters: the dots of ``:`` ``;`` ``i``, periods, commas.

    On worn thermal and impact receipts a colon is often two pale specks beside solid letters (so
    ``DATE: 02/12`` reads ``DATE02/12``). Components at most 0.3 of the text height tall and 0.4 wide keep
    20-55% of their ink (each its own share); letters are untouched, and a faint mark is still there, so the
    label stays true.

    Args:
        mask: uint8 ink coverage (255 = ink).
        rng: the sample's generator.
        height: text height in pixels (capitals and hanzi above the baseline); what counts as small scales
            with it.

    Returns:
        A uint8 mask of the same shape, nowhere darker than the input.
    """
    n, labels, stats, _ = cv2.connectedComponentsWithStats((mask > 20).astype(np.uint8), connectivity=8)
    small = (stats[1:, cv2.CC_STAT_HEIGHT] <= 0.3 * height) & (stats[1:, cv2.CC_STAT_WIDTH] <= 0.4 * height)
    if not small.any():
        return mask.copy()
    keep = np.ones(n, np.float32)
    keep[1:][small] = rng.uniform(0.2, 0.55, int(small.sum()))
    return (mask.astype(np.float32) * keep[labels]).astype(np.uint8)


def dot_matrix(mask: np.ndarray, rng: np.random.Generator, height: float, dense: bool = False) -> np.ndarray:
    """Re-draw the strokes as round dots on a regular grid, as an impact (9/24-pin) print head prints.

    Receipts from such printers show letters broken into dots, which a model trained on solid strokes
    misreads. The mask is sampled on a grid (pitch 0.08-0.16 of the text height, 0.06-0.1 for lines with
    hanzi, which need more dots to stay legible; at least 2 px); every inked grid point gets a soft disc
    (radius 0.3-0.55 of the pitch) with its own jitter and ink density, sometimes stretched sideways (the
    head moving while it fires).

    Args:
        mask: uint8 ink coverage (255 = ink).
        rng: the sample's generator (every choice comes from it, so the sample stays reproducible).
        height: text height in pixels (capitals and hanzi above the baseline); the pitch scales with it.
        dense: the line has hanzi (finer pitch).

    Returns:
        A uint8 mask of the same shape.
    """
    h, w = mask.shape
    lo, hi = (0.06, 0.1) if dense else (0.08, 0.16)
    py = max(2.0, rng.uniform(lo, hi) * height)
    px = max(2.0, py * rng.uniform(0.85, 1.15))  # horizontal and vertical steps of a head differ slightly
    r = rng.uniform(0.3, 0.55) * py  # separate dots to beaded strokes; larger discs merge into solid strokes
    stretch = rng.uniform(1.1, 1.5) if rng.random() < 0.3 else 1.0
    # A pin fires where the ink share of its cell is at least half the best share nearby: every stroke,
    # however thin or off-grid, gets about one dot across per pitch of its width (not zero, not two).
    kx, ky = max(2, round(px)), max(2, round(py))
    cover = cv2.blur(mask.astype(np.float32), (kx, ky))
    peak = cv2.dilate(cover, np.ones((ky, kx), np.uint8))
    ys = np.arange(rng.uniform(0, py), h, py)
    xs = np.arange(rng.uniform(0, px), w, px)
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    at = np.minimum(gy.round().astype(int), h - 1), np.minimum(gx.round().astype(int), w - 1)
    hit = (cover[at] >= rng.uniform(0.45, 0.55) * peak[at]) & (peak[at] > 40.0)
    n = int(hit.sum())
    out = np.zeros((h, w), np.float32)
    if n == 0:
        return out.astype(np.uint8)
    jit = rng.normal(0.0, 0.08 * py, (2, n))
    yy = np.clip((gy[hit] + jit[0]).round().astype(int), 0, h - 1)
    xx = np.clip((gx[hit] + jit[1]).round().astype(int), 0, w - 1)
    out[yy, xx] = rng.uniform(0.55, 1.0, n).astype(np.float32)
    rx, ry = max(r, min(r * stretch, 0.8 * px)), r  # smeared dots still leave gaps along the row
    ex, ey = int(np.ceil(rx + 0.5)), int(np.ceil(ry + 0.5))
    dy, dx = np.mgrid[-ey:ey + 1, -ex:ex + 1].astype(np.float32)
    d = np.sqrt((dx / rx) ** 2 + (dy / ry) ** 2) * ry  # distance in pixels along the minor axis
    disc = np.clip(ry + 0.5 - d, 0.0, 1.0)  # anti-aliased edge
    dots = cv2.filter2D(out, -1, disc, borderType=cv2.BORDER_CONSTANT)
    return np.clip(dots * 255.0, 0, 255).astype(np.uint8)


def bitmap_font(mask: np.ndarray, rng: np.random.Generator, height: float, dense: bool = False) -> np.ndarray:
    """Re-draw the strokes on a coarse grid of square pixels, as a POS printer prints its built-in font.

    Thermal and impact receipt printers draw text from bitmap fonts about 12-17 dots high at 203 dpi; scanned,
    their letters have stair-stepped edges and strokes one or two cells wide, which look unlike outline fonts
    rendered with anti-aliasing. The mask is area-sampled onto a grid of 8-15 cells per capital height (14-22
    for lines with hanzi, which need more cells to stay legible); a cell is inked where its coverage is at
    least 30-50% of the best cell next to it, so thin strokes keep one cell rather than vanishing.

    Args:
        mask: uint8 ink coverage (255 = ink).
        rng: the sample's generator.
        height: text height in pixels (capitals and hanzi above the baseline); the cell size scales with it.
        dense: the line has hanzi (finer grid).

    Returns:
        A uint8 mask of the same shape (0 or 255); the input itself when cells would be under 1.6 px.
    """
    h, w = mask.shape
    cy = height / (rng.uniform(14, 22) if dense else rng.uniform(8, 15))
    if cy < 1.6:
        return mask
    cx = cy * rng.uniform(0.85, 1.2)  # 12x24 and 9x17 fonts: cells are not always square
    gw, gh = max(1, round(w / cx)), max(1, round(h / cy))
    cover = cv2.resize(mask.astype(np.float32), (gw, gh), interpolation=cv2.INTER_AREA)
    peak = cv2.dilate(cover, np.ones((3, 3), np.uint8))
    cells = (cover >= rng.uniform(0.3, 0.5) * peak) & (cover > 40.0)
    return cv2.resize(cells.astype(np.uint8) * 255, (w, h), interpolation=cv2.INTER_NEAREST)


def colours(rng: np.random.Generator, inverted: bool, low_contrast: bool) -> tuple[float, float]:
    """Background and ink gray levels: dark on light, light on dark, or faint (thermal receipts, pencil)."""
    if low_contrast:
        bg = rng.uniform(150, 250)
        ink = bg - rng.uniform(45, 100)
    else:
        bg = rng.uniform(185, 255)
        ink = rng.uniform(0, min(110, bg - 90))
    if inverted:
        bg, ink = 255.0 - bg, 255.0 - ink
    return float(bg), float(ink)


def background(h: int, w: int, bg: float, rng: np.random.Generator, gradient: bool,
               texture: bool) -> np.ndarray | float:
    """A background: plain (returned as a scalar: nothing to allocate), a linear gradient, paper texture."""
    if not gradient and not texture:
        return bg
    img = np.full((h, w), bg, np.float32)
    if gradient:
        a = rng.uniform(0, 2 * np.pi)
        amp = rng.uniform(15, 60) * (1 if bg < 128 else -1)
        x = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :] * np.cos(a)
        y = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None] * np.sin(a) * (h / max(w, 1))
        img += amp * (x + y + 0.5)
    if texture:
        cell = int(rng.integers(4, 24))
        low = rng.standard_normal((h // cell + 2, w // cell + 2), dtype=np.float32) * rng.uniform(3, 12)
        img += cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
        img += rng.standard_normal((h, w), dtype=np.float32) * np.float32(rng.uniform(1, 5))
    return img


def clutter(h: int, w: int, bg: float, ink: float, rng: np.random.Generator) -> np.ndarray:
    """A busy background as on signs, covers, posters and photos: soft blobs and a few flat shapes.

    Gray levels stay on the background's side of the ink, at least a third of the ink contrast away from
    it, so the text stays legible while the background is no longer a flat field the model can rely on.
    """
    cell = int(rng.integers(max(2, h // 4), max(3, 2 * h)))
    low = rng.uniform(0.0, 1.0, (h // cell + 2, w // cell + 2)).astype(np.float32)
    field = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(int(rng.integers(0, 4))):  # flat shapes: panels, stripes, photo edges
        x0, x1 = sorted(int(v) for v in rng.integers(-w // 4, w + w // 4, 2))
        y0, y1 = sorted(int(v) for v in rng.integers(-h // 2, h + h // 2, 2))
        level = float(rng.uniform(0, 1))
        if rng.random() < 0.5:
            cv2.rectangle(field, (x0, y0), (x1, y1), level, -1)
        else:
            box = ((x0 + x1) / 2, (y0 + y1) / 2), (max(1, x1 - x0), max(1, y1 - y0)), float(rng.uniform(0, 180))
            cv2.ellipse(field, box, level, -1)
    field = np.clip(field, 0.0, 1.0)
    near = ink + (bg - ink) / 3  # the level closest to the ink that the background may take
    far = 255.0 if bg > ink else 0.0
    return (near + (far - near) * field).astype(np.float32)


def compose(text: np.ndarray, deco: np.ndarray, back: np.ndarray | float, ink: float, deco_ink: float,
            rng: np.random.Generator, faded: bool) -> np.ndarray:
    """Lay ink over the background through the masks; faded print gets uneven ink density."""
    a = text.astype(np.float32)
    if faded:
        h, w = a.shape
        cell = int(rng.integers(3, 12))
        dens = cv2.resize(rng.uniform(0.55, 1.0, (h // cell + 2, w // cell + 2)).astype(np.float32), (w, h))
        a *= dens
    if isinstance(back, float):
        a *= np.float32((ink - back) / 255.0)
        a += np.float32(back)
        img = a
    else:
        img = back + (ink - back) * (a * np.float32(1.0 / 255.0))
    if deco.any():
        d = deco.astype(np.float32) * (1.0 / 255.0)
        img += (deco_ink - img) * d
    return img


def thermal_fade(img: np.ndarray, back: np.ndarray | float, depth: float,
                 rng: np.random.Generator) -> np.ndarray:
    """Faint, worn thermal print: weak ink that fades along the line, with light streaks.

    Old thermal paper or a weak head prints at a fraction of the ink's contrast, unevenly along the head;
    dead heating elements leave thin vertical gaps and uneven paper feed light horizontal bands. The ink is
    moved towards the background, never past it, and keeps at least 35 gray levels of contrast (or its own,
    if that is less) so the label stays readable.

    Args:
        img: float image after composition.
        back: its background (a scalar or an image), the level faded ink tends to.
        depth: gray-level distance between ink and background (sets the legibility floor).
        rng: the sample's generator.

    Returns:
        A float32 image of the same shape.
    """
    h, w = img.shape
    contrast = rng.uniform(0.35, 0.7)
    knots = rng.uniform(0.55, 1.0, (1, int(rng.integers(2, 7)))).astype(np.float32)
    along = cv2.resize(knots, (w, 1), interpolation=cv2.INTER_CUBIC)[0]
    gain = np.clip(contrast * along, min(1.0, 35.0 / max(depth, 1.0)), 1.0).astype(np.float32)
    gain = np.repeat(gain[None, :], h, axis=0)
    for _ in range(int(rng.integers(1, 5))):
        if rng.random() < 0.65:  # a dead element: a 1-2 px column with (almost) no ink
            x, t = int(rng.integers(0, w)), int(rng.integers(1, 3))
            gain[:, x:x + t] *= np.float32(rng.uniform(0.0, 0.3))
        else:  # a feed band: a thin row printed lighter
            y, t = int(rng.integers(0, h)), int(rng.integers(1, max(2, h // 12) + 1))
            gain[y:y + t, :] *= np.float32(rng.uniform(0.4, 0.7))
    return (back + (img - back) * gain).astype(np.float32)


def shadow(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A soft-edged shadow over part of the line (a hand or phone over the paper)."""
    h, w = img.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    c = rng.uniform(0.2, 0.8) * w * np.cos(a) + rng.uniform(0.2, 0.8) * h * np.sin(a)
    d = xx * np.cos(a) + yy * np.sin(a) - c
    edge = max(1.0, rng.uniform(0.02, 0.3) * w)
    f = 1.0 / (1.0 + np.exp(-d / edge))
    return img * (1.0 - rng.uniform(0.25, 0.6) * f)


def uneven_light(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness falling off across the line (a lamp on one side, a curved page)."""
    h, w = img.shape
    cx, cy = rng.uniform(-0.5, 1.5) * w, rng.uniform(-2, 3) * h
    r = rng.uniform(0.5, 2.0) * max(w, h)
    yy, xx = np.ogrid[0:h, 0:w]
    dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2).astype(np.float32) / r
    gain = 1.0 - rng.uniform(0.15, 0.45) * np.clip(dist, 0, 1.5) / 1.5
    return img * gain + rng.uniform(-15, 15)


def gaussian_blur(img: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Out-of-focus camera or soft scan."""
    return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.3) * max(size, 16) / 32.0)


def motion_blur(img: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Camera shake: a short line kernel at a random angle."""
    n = int(rng.integers(3, max(4, size // 6) + 1))
    k = np.zeros((n, n), np.float32)
    k[n // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((n - 1) / 2, (n - 1) / 2), rng.uniform(0, 180), 1.0)
    k = cv2.warpAffine(k, rot, (n, n))
    return cv2.filter2D(img, -1, k / max(k.sum(), 1e-6), borderType=cv2.BORDER_REFLECT)


def defocus_blur(img: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Lens defocus: a disc kernel."""
    r = int(rng.integers(1, max(2, size // 14) + 1))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)).astype(np.float32)
    return cv2.filter2D(img, -1, k / k.sum(), borderType=cv2.BORDER_REFLECT)


def low_res(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Downscale then upscale back: low-resolution photos, zoomed screenshots, faxes."""
    h, w = img.shape
    f = rng.uniform(0.35, 0.75)
    small = cv2.resize(img, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
    interp = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_NEAREST)[int(rng.choice(3, p=[0.5, 0.35, 0.15]))]
    return cv2.resize(small, (w, h), interpolation=interp)


def binarize(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scanner/fax binarisation: a global or local threshold, with noise deciding borderline pixels."""
    u8 = np.clip(img + rng.normal(0, rng.uniform(2, 14), img.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        _, b = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    else:
        block = int(rng.integers(5, 16)) * 2 + 1
        b = cv2.adaptiveThreshold(u8, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block,
                                  float(rng.uniform(2, 12)))
    lo, hi = rng.uniform(0, 60), rng.uniform(200, 255)
    return lo + (hi - lo) * (b.astype(np.float32) / 255.0)


def noise(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise: Gaussian, sometimes brightness dependent."""
    sigma = rng.uniform(2, 14)
    n = rng.standard_normal(img.shape, dtype=np.float32) * sigma
    if rng.random() < 0.3:
        n *= np.sqrt(np.clip(img, 1, 255) / 128.0)
    return img + n


def salt_pepper(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dust and speckles of dirty scans."""
    out = img.copy()
    p = rng.uniform(0.002, 0.02)
    u = rng.random(img.shape)
    out[u < p / 2] = rng.uniform(0, 60)
    out[u > 1 - p / 2] = rng.uniform(200, 255)
    return out


def jpeg(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """JPEG compression artefacts (photos, messaging apps)."""
    u8 = np.clip(img, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(15, 90))])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) if ok else img
