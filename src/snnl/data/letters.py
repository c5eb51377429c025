"""A notMNIST-like outlier set made here: letters A-J rendered from matplotlib's DejaVu fonts.

Every image draws, from one seeded generator: a letter (balanced over A-J), a font
(every DejaVu TrueType family and style matplotlib ships that has glyphs for A-J), a
size, an offset, a rotation and a stroke width. Glyphs are drawn white on black on a
64 x 64 canvas, rotated, then reduced to 28 x 28 grayscale, like MNIST. The same seed
gives byte-identical images (for the same Pillow/FreeType and matplotlib fonts).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from snnl.data.loaded import LoadedData
from snnl.errors import DataError

LETTERS = list("ABCDEFGHIJ")
CANVAS = 64
OUT_SIZE = 28
FONT_SIZE = (30, 52)  # pixels on the 64 x 64 canvas, inclusive
MAX_OFFSET = 5  # pixels on the canvas, each axis
MAX_ROTATION = 15.0  # degrees, either way
STROKE = (0, 2)  # extra stroke width in canvas pixels, inclusive


@lru_cache(maxsize=1)
def dejavu_fonts() -> tuple[Path, ...]:
    """matplotlib's bundled DejaVu .ttf files that contain glyphs for A-J, sorted by name."""
    import matplotlib
    from matplotlib.ft2font import FT2Font

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fonts = []
    for path in sorted(folder.glob("DejaVu*.ttf")):
        face = FT2Font(str(path))
        if all(face.get_char_index(ord(letter)) for letter in LETTERS):
            fonts.append(path)
    if not fonts:
        raise DataError(
            f"no DejaVu TrueType font with glyphs for A-J found in {folder}; "
            "reinstall matplotlib (pip install --force-reinstall matplotlib)"
        )
    return tuple(fonts)


@lru_cache(maxsize=512)
def _font(path: Path, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(str(path), size)


def render_letter(letter: str, font_path: Path, size: int, dx: int, dy: int, angle: float, stroke: int) -> np.ndarray:
    """One 28 x 28 uint8 image of ``letter``."""
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(canvas)
    center = (CANVAS / 2 + dx, CANVAS / 2 + dy)
    draw.text(center, letter, fill=255, font=_font(font_path, size), anchor="mm", stroke_width=stroke, stroke_fill=255)
    canvas = canvas.rotate(angle, resample=Image.Resampling.BILINEAR, center=center)
    small = canvas.resize((OUT_SIZE, OUT_SIZE), resample=Image.Resampling.BOX)
    return np.asarray(small, dtype=np.uint8)


def load_letters(options: dict[str, Any]) -> LoadedData:
    """``n`` rendered letters, labels 0..9 for A..J, classes balanced."""
    n, seed = options["n"], options["seed"]
    fonts = dejavu_fonts()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 23]))
    labels = rng.permutation(np.arange(n) % len(LETTERS)).astype(np.int64)
    font_idx = rng.integers(0, len(fonts), n)
    sizes = rng.integers(FONT_SIZE[0], FONT_SIZE[1] + 1, n)
    offsets = rng.integers(-MAX_OFFSET, MAX_OFFSET + 1, (n, 2))
    angles = rng.uniform(-MAX_ROTATION, MAX_ROTATION, n)
    strokes = rng.integers(STROKE[0], STROKE[1] + 1, n)
    images = np.empty((n, 1, OUT_SIZE, OUT_SIZE), np.uint8)
    for i in tqdm(range(n), desc="letters: rendering", unit="img", mininterval=1.0):
        images[i, 0] = render_letter(
            LETTERS[labels[i]], fonts[font_idx[i]], int(sizes[i]), int(offsets[i, 0]), int(offsets[i, 1]),
            float(angles[i]), int(strokes[i]),
        )
    return LoadedData(
        classes=LETTERS,
        pools={"test": (images, labels)},
        source={
            "kind": "generated",
            "origin": "letters A-J rendered with Pillow from matplotlib's DejaVu fonts (notMNIST-like)",
            "fonts": [p.name for p in fonts],
            "render": {
                "canvas": CANVAS,
                "font_size": list(FONT_SIZE),
                "max_offset": MAX_OFFSET,
                "max_rotation_deg": MAX_ROTATION,
                "stroke": list(STROKE),
                "reduce": f"box filter {CANVAS}->{OUT_SIZE}",
            },
        },
    )
