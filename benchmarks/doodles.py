"""Crude hand-drawn garments for benchmarks/realworld.py: a few strokes per class, not traced from any image.

Each class has a prototype drawn the way a person sketches it from memory: an outline polygon
(the garment's contour in a box of the class's usual proportions) and a few extra strokes (a coat's
opening, a shirt's collar and buttons, a sandal's straps, a bag's handle). A doodle jitters every
vertex, squashes or stretches the box, rotates it, places it anywhere on a 280x280 canvas at a random
size and draws it with a stroke 5-22 px wide, as an outline or filled, as white strokes on a
transparent ground (what the app's canvas returns) or on black. Shoes face left in half the doodles
(as in Fashion-MNIST) and right in the other half.

These kinds were written after the training recipe of `sketch-robust` was fixed and are kept out of
every training decision: they measure drawings in general, not the renderer the recipe was tuned on.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

CANVAS = 280
SS = 2                                       # supersampling for smooth strokes

# (width, height) proportions, outline polygon, extra strokes; x to the right, y down, in [0, 1].
_LONG_SLEEVES = [(0.36, 0.02), (0.64, 0.02), (0.88, 0.12), (1.0, 0.92), (0.84, 0.94), (0.78, 0.35),
                 (0.78, 0.98), (0.22, 0.98), (0.22, 0.35), (0.16, 0.94), (0.0, 0.92), (0.12, 0.12)]
PROTOTYPES: dict[int, tuple[tuple[float, float], list, list]] = {
    0: ((1.0, 0.95), [(0.36, 0.03), (0.5, 0.12), (0.64, 0.03), (0.96, 0.18), (0.86, 0.4), (0.76, 0.34),
                      (0.76, 0.97), (0.24, 0.97), (0.24, 0.34), (0.14, 0.4), (0.04, 0.18)], []),
    1: ((0.5, 1.0), [(0.2, 0.02), (0.8, 0.02), (0.86, 0.98), (0.58, 0.98), (0.5, 0.3), (0.42, 0.98),
                     (0.14, 0.98)], []),
    2: ((1.0, 0.9), _LONG_SLEEVES, [[(0.36, 0.02), (0.5, 0.1), (0.64, 0.02)]]),
    3: ((0.62, 1.0), [(0.36, 0.02), (0.64, 0.02), (0.7, 0.12), (0.62, 0.34), (0.92, 0.98), (0.08, 0.98),
                      (0.38, 0.34), (0.3, 0.12)], []),
    4: ((0.85, 1.0), _LONG_SLEEVES, [[(0.5, 0.1), (0.5, 0.98)], [(0.36, 0.02), (0.5, 0.18), (0.64, 0.02)]]),
    5: ((1.0, 0.45), [(0.0, 0.72), (1.0, 0.6), (1.0, 0.82), (0.0, 0.96)],
        [[(0.12, 0.72), (0.3, 0.2), (0.5, 0.66)], [(0.45, 0.67), (0.7, 0.1), (0.9, 0.6)], [(0.62, 0.64), (0.8, 0.36)]]),
    6: ((0.95, 1.0), _LONG_SLEEVES, [[(0.36, 0.02), (0.44, 0.14), (0.5, 0.06), (0.56, 0.14), (0.64, 0.02)],
                                     [(0.5, 0.14), (0.5, 0.98)]]),
    7: ((1.0, 0.5), [(0.0, 0.62), (0.12, 0.48), (0.45, 0.4), (0.62, 0.1), (0.95, 0.1), (1.0, 0.5),
                     (1.0, 0.88), (0.0, 0.88)], [[(0.45, 0.4), (0.62, 0.5)]]),
    8: ((1.0, 0.85), [(0.04, 0.35), (0.96, 0.35), (0.98, 0.98), (0.02, 0.98)],
        [[(0.3, 0.36), (0.32, 0.06), (0.68, 0.06), (0.7, 0.36)]]),
    9: ((0.95, 1.0), [(0.5, 0.0), (0.95, 0.0), (0.98, 1.0), (0.0, 1.0), (0.02, 0.78), (0.2, 0.62),
                      (0.5, 0.55)], [[(0.02, 0.9), (0.98, 0.9)]]),
}
SHOES = (5, 7, 9)
KINDS = ("doodle_outline", "doodle_filled")


def _transform(points, box, angle, flip, centre, rng) -> list[tuple[float, float]]:
    w, h = box
    out = []
    for x, y in points:
        x, y = x + rng.normal(0, 0.025), y + rng.normal(0, 0.025)
        if flip:
            x = 1 - x
        px, py = (x - 0.5) * w, (y - 0.5) * h
        c, s = np.cos(angle), np.sin(angle)
        out.append(((c * px - s * py + centre[0]) * SS, (s * px + c * py + centre[1]) * SS))
    return out


def render_doodle(label: int, kind: str, rng: np.random.Generator) -> bytes:
    """A 280x280 PNG doodle of class `label`; kind doodle_outline or doodle_filled."""
    (pw, ph), outline, strokes = PROTOTYPES[label]
    size = rng.uniform(110, 230)
    stretch = np.exp(rng.uniform(-0.12, 0.12))
    w, h = size * pw / max(pw, ph) * stretch, size * ph / max(pw, ph) / stretch
    angle = np.radians(rng.uniform(-12, 12))
    reach = 0.5 * (abs(w * np.cos(angle)) + abs(h * np.sin(angle))), 0.5 * (abs(w * np.sin(angle)) + abs(h * np.cos(angle)))
    centre = (rng.uniform(reach[0] + 12, CANVAS - reach[0] - 12) if CANVAS - 2 * reach[0] > 24 else CANVAS / 2,
              rng.uniform(reach[1] + 12, CANVAS - reach[1] - 12) if CANVAS - 2 * reach[1] > 24 else CANVAS / 2)
    flip = label in SHOES and rng.random() < 0.5
    width = int(rng.uniform(5, 22) * SS)
    im = Image.new("L", (CANVAS * SS, CANVAS * SS), 0)
    draw = ImageDraw.Draw(im)
    poly = _transform(outline, (w, h), angle, flip, centre, rng)
    if kind == "doodle_filled":
        draw.polygon(poly, fill=255)
    draw.line(poly + poly[:1], fill=255, width=width, joint="curve")
    for stroke in strokes:
        # The canvas has a white pen only: on a filled shape an inner stroke vanishes, a strap shows.
        draw.line(_transform(stroke, (w, h), angle, flip, centre, rng), fill=255, width=max(SS, width // 2),
                  joint="curve")
    cover = np.asarray(im.resize((CANVAS, CANVAS), Image.BOX))
    buf = io.BytesIO()
    if rng.random() < 0.5:                                  # white strokes on a transparent ground
        rgba = np.zeros((CANVAS, CANVAS, 4), np.uint8)
        rgba[..., :3] = 255
        rgba[..., 3] = cover
        Image.fromarray(rgba).save(buf, "PNG")
    else:                                                   # white on the canvas's black
        Image.fromarray(cover).save(buf, "PNG")
    return buf.getvalue()
