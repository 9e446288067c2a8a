"""Drawn-style training images: a batch of garments rendered the way a person draws them, on the device.

A canvas drawing reaches the classifier through `preprocess`: its strokes are levelled to a flat
grey (`FLAT_LEVEL`, 0.8), an outline is filled in up to its strokes' centre line when it is closed
enough, and the shape is cropped to its bounding box, its longest side scaled to 28 and centred.
So what a model sees of a drawing is a flat, untextured silhouette (or, where the filling gave up,
an outline of a stroke or two), framed like a Fashion-MNIST garment, with the hand's imprecision:
a slight rotation, a squashed or stretched shape, a wobbly contour, thicker or thinner strokes.

`draw(images, recipe, generator)` makes such a drawing of every image of a batch:

    silhouette   the garment upsampled 3x (84x84), thresholded at a random level (8-48 of 255),
                 small holes closed; in half the images every enclosed hole filled too (a bag's
                 handle, the gaps of a sandal), as a person drawing its outline would
    style        filled (thinned by 1/3 px or thickened by up to 4/3 px at 28x28, as a broad brush
                 does), or, with p = recipe.drawn_outline, an outline of the silhouette 1/3-8/3 px
                 wide, a third of them left open by a gap (a wedge of 15-45 degrees around the
                 shape's centre)
    hand         rotation up to +-recipe.drawn_rotate degrees, aspect x0.88-1.14, shear up to 0.12,
                 and a smooth random displacement (a 4x4 noise field, upsampled; about 1 px at 28x28)
    framing      cropped to the drawn shape's bounding box, the longest side to 28, centred, area-
                 downsampled (the preprocessing's `frame`)
    ink          a flat level (0.8, the preprocessing's, in half the images; else 0.55-1.0) and a
                 light blur (up to 60% of a 3x3 box)

Everything is batched torch on the images' device (thresholds, max-pool dilation and erosion,
`affine_grid`/`grid_sample`, cumulative maxima for hole filling): no per-image Python, no
host-device synchronisation. Every random draw comes from the CPU `generator` the recipe seeds per
epoch (a fixed number of draws per batch, whatever is drawn), so training is repeatable and resumes
exactly.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

UP = 3                       # working resolution: 3 x 28 = 84 px
SIDE = 28
MARGIN = 2                   # px of background added around each garment (it may touch the frame)
SRC = UP * (SIDE + 2 * MARGIN)   # 96: the silhouette's canvas
WORK = UP * SIDE             # 84: the drawn, framed canvas, area-downsampled to 28
ZOOM = 1.3                   # the warped canvas shows this much more than the garment's frame (room to rotate)
FLAT_LEVEL = 0.8             # the preprocessing's level for flat shapes (fmnist_core.preprocess.FLAT_LEVEL)


def _max_filter(m: torch.Tensor, r: int, outside: float = 0.0) -> torch.Tensor:
    """The maximum over a (2r+1)-square around each pixel, `outside` beyond the canvas; separable shifts
    (several times faster than max_pool2d on one channel on a CPU)."""
    if r <= 0:
        return m
    h, w = m.shape[-2:]
    p = F.pad(m, (r, r, r, r), value=outside)
    rows = p[..., :, 0:w]
    for i in range(1, 2 * r + 1):
        rows = torch.maximum(rows, p[..., :, i:i + w])
    out = rows[..., 0:h, :]
    for i in range(1, 2 * r + 1):
        out = torch.maximum(out, rows[..., i:i + h, :])
    return out


def _dilate(m: torch.Tensor, r: int) -> torch.Tensor:
    return _max_filter(m, r)


def _erode(m: torch.Tensor, r: int) -> torch.Tensor:
    """Erosion with the outside of the canvas as background."""
    return 1 - _max_filter(1 - m, r, outside=1.0) if r > 0 else m


def _choose(options: list[torch.Tensor], index: torch.Tensor) -> torch.Tensor:
    """Per image b, options[index[b]][b]: (B, ...) from a list of (B, ...) tensors."""
    index = index.view(-1, *([1] * (options[0].dim() - 1)))
    out = options[0]
    for k in range(1, len(options)):
        out = torch.where(index == k, options[k], out)
    return out


def _fill_enclosed(m: torch.Tensor) -> torch.Tensor:
    """The mask with every pixel that has mask to its left, right, top and bottom added (holes and
    enclosed gaps filled; open concavities such as the gap between trouser legs kept)."""
    left = m.cummax(-1).values
    right = m.flip(-1).cummax(-1).values.flip(-1)
    up = m.cummax(-2).values
    down = m.flip(-2).cummax(-2).values.flip(-2)
    return torch.maximum(m, left * right * up * down)


def _bbox_frame(soft: torch.Tensor) -> torch.Tensor:
    """(B, 2, 3) affine thetas that crop each image to its shape's bounding box (> 0.3), longest
    side to the full frame, centred; an empty image keeps the whole canvas."""
    b, _, h, w = soft.shape
    ink = soft[:, 0] > 0.3
    rows, cols = ink.any(-1).float(), ink.any(-2).float()          # (B, H), (B, W)
    empty = rows.sum(-1) == 0
    top, bottom = rows.argmax(-1), h - 1 - rows.flip(-1).argmax(-1)
    left, right = cols.argmax(-1), w - 1 - cols.flip(-1).argmax(-1)
    cy, cx = (top + bottom + 1).float() / 2, (left + right + 1).float() / 2
    side = torch.maximum(bottom - top + 1, right - left + 1).float()
    side = torch.where(empty, torch.full_like(side, float(w)), side)
    cy = torch.where(empty, torch.full_like(cy, h / 2), cy)
    cx = torch.where(empty, torch.full_like(cx, w / 2), cx)
    theta = torch.zeros(b, 2, 3, device=soft.device)
    theta[:, 0, 0] = side / w
    theta[:, 1, 1] = side / h
    theta[:, 0, 2] = cx / (w / 2) - 1
    theta[:, 1, 2] = cy / (h / 2) - 1
    return theta


def _affine_grid(theta: torch.Tensor, size: int) -> torch.Tensor:
    """`F.affine_grid(theta, (B, 1, size, size), align_corners=False)` by broadcasting (no bmm:
    several times faster on a CPU)."""
    c = (torch.arange(size, device=theta.device, dtype=theta.dtype) * 2 + 1) / size - 1
    xs, ys = c.view(1, 1, size), c.view(1, size, 1)
    t = theta.view(-1, 6, 1, 1).unbind(1)
    return torch.stack([t[0] * xs + t[1] * ys + t[2], t[3] * xs + t[4] * ys + t[5]], -1)


def draw_params(n: int, outline: float, rotate: float, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The random choices for `n` drawings, all drawn here, in a fixed order, on the CPU."""
    g = generator

    def rand():
        return torch.rand(n, generator=g)
    p = {}
    p["threshold"] = (8 + 40 * rand()) / 255
    p["fill_all"] = rand() < 0.5
    p["outline"] = rand() < outline
    p["thicken"] = torch.randint(0, 6, (n,), generator=g) - 1             # filled: -1 (thinner) .. +4 px at 96
    p["ring_in"] = torch.randint(1, 6, (n,), generator=g)                # outline: 1-5 px inside the contour
    p["ring_out"] = torch.randint(0, 4, (n,), generator=g)               # ... and 0-3 px outside
    p["gapped"] = rand() < 1 / 3
    p["gap_angle"] = rand() * 2 * math.pi
    p["gap_width"] = math.radians(15) + rand() * math.radians(30)
    p["angle"] = (2 * rand() - 1) * math.radians(rotate)
    p["aspect"] = torch.exp((2 * rand() - 1) * math.log(1.14))
    p["shear"] = (2 * rand() - 1) * 0.12
    p["wobble_amp"] = rand() * 0.06
    p["wobble"] = torch.randn(n, 2, 4, 4, generator=g)
    flat = rand() < 0.5
    p["level"] = torch.where(flat, torch.full((n,), FLAT_LEVEL), 0.55 + 0.45 * rand())
    p["blur"] = rand() * 0.6
    return p


def render(images_u8: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """uint8 (B, 28, 28) garments -> uint8 (B, 28, 28) drawings of them, with the choices `p`
    (`draw_params` of B, on the images' device). Each image's drawing depends on it and its own
    choices only, so a batch may be cut into chunks of any size."""
    b = images_u8.shape[0]
    dev = images_u8.device

    def v(name):                                        # (B, 1, 1, 1) for broadcasting over images
        return p[name].view(b, 1, 1, 1)

    x = F.pad(images_u8.float().unsqueeze(1) / 255, (MARGIN,) * 4)           # (B, 1, 32, 32)
    up = F.interpolate(x, size=(SRC, SRC), mode="bilinear", align_corners=False)
    m = (up > v("threshold")).to(torch.uint8)                             # masks in uint8: 4x less to move
    m = _erode(_dilate(m, 2), 2)                                           # small holes and nicks closed
    # Enclosed holes and gaps, found at 32x32 (cheap) and added at full size.
    small = (x > v("threshold")).to(torch.uint8)
    holes = _fill_enclosed(_erode(_dilate(small, 1), 1)) - small
    holes = F.interpolate(holes.float(), size=(SRC, SRC), mode="bilinear", align_corners=False) > 0.5
    m = torch.where(holes & v("fill_all"), torch.ones_like(m), m)

    eroded, dilated = [m], [m]
    for _ in range(5):
        eroded.append(_erode(eroded[-1], 1))
    for _ in range(4):
        dilated.append(_dilate(dilated[-1], 1))
    filled = _choose([eroded[1], *dilated], p["thicken"] + 1)
    ring = _choose(dilated[:4], p["ring_out"]) * (1 - _choose(eroded[1:], p["ring_in"] - 1))
    # The open gap: a wedge around the shape's centre of mass.
    c = torch.linspace(-1, 1, SRC, device=dev)
    ys, xs = c.view(1, SRC, 1), c.view(1, 1, SRC)
    mf = m[:, 0].float()
    mass = mf.sum((-1, -2)).clamp_min(1)
    my = ((mf.sum(-1) * c).sum(-1) / mass).view(b, 1, 1)
    mx = ((mf.sum(-2) * c).sum(-1) / mass).view(b, 1, 1)
    off = torch.remainder(torch.atan2(ys - my, xs - mx) - p["gap_angle"].view(b, 1, 1) + math.pi, 2 * math.pi)
    in_gap = ((off - math.pi).abs() < p["gap_width"].view(b, 1, 1) / 2) & p["gapped"].view(b, 1, 1)
    ring = ring * (~in_gap).unsqueeze(1)
    shape = torch.where(v("outline"), ring, filled).float()

    # The hand: rotation, aspect and shear about the centre, on a zoomed-out canvas, plus a wobble.
    cos, sin, aspect, shear = torch.cos(p["angle"]), torch.sin(p["angle"]), p["aspect"], p["shear"]
    a = torch.stack([torch.stack([cos * aspect, -sin + shear], -1),
                     torch.stack([sin, cos / aspect], -1)], -2) * ZOOM            # (B, 2, 2) output -> source
    zero = torch.zeros(b, 2, 1, device=dev)
    half = WORK // 2                                    # the bounding box is found at half resolution
    field = p["wobble"] * p["wobble_amp"].view(b, 1, 1, 1)
    grid = _affine_grid(torch.cat([a, zero], -1), half) + F.interpolate(
        field, size=(half, half), mode="bilinear", align_corners=True).permute(0, 2, 3, 1)
    warped = F.grid_sample(shape, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    # Framing: the drawn shape's bounding box to the full frame. The crop and the hand's affine map
    # compose into one; the wobble is read at the cropped positions; the source is sampled once.
    crop = _bbox_frame(warped)
    theta = torch.cat([a @ crop[:, :, :2], a @ crop[:, :, 2:]], -1)
    moved = F.grid_sample(field, _affine_grid(crop, WORK), mode="bilinear", padding_mode="border",
                          align_corners=True)
    grid = _affine_grid(theta, WORK) + moved.permute(0, 2, 3, 1)
    framed = F.grid_sample(shape, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = F.avg_pool2d(framed, UP) * v("level")                           # (B, 1, 28, 28)
    soft = F.avg_pool2d(out, 3, 1, 1, count_include_pad=False)
    out = out + v("blur") * (soft - out)
    return torch.round(out.clamp(0, 1) * 255).to(torch.uint8).squeeze(1)


def draw(images_u8: torch.Tensor, outline: float = 0.3, rotate: float = 15.0,
         generator: torch.Generator | None = None, chunk: int | None = None) -> torch.Tensor:
    """uint8 (B, 28, 28) garments -> uint8 (B, 28, 28) drawings of them (see the module's docstring).

    `outline`: the share of drawings that are outlines; `rotate`: the largest rotation in degrees;
    `generator`: a CPU generator (default: seed 0); `chunk`: images rendered at a time (default: by
    device; it changes memory use, never the result).
    """
    b = images_u8.shape[0]
    dev = images_u8.device
    params = draw_params(b, outline, rotate, generator or torch.Generator().manual_seed(0))
    chunk = chunk or (8192 if dev.type == "cuda" else 128)   # CPU: small chunks stay in cache
    out = torch.empty_like(images_u8)
    for i in range(0, b, chunk):
        part = {k: t[i:i + chunk].to(dev) for k, t in params.items()}
        out[i:i + chunk] = render(images_u8[i:i + chunk], part)
    return out


def drawn_epoch(x_u8: torch.Tensor, share: float, outline: float, rotate: float,
                generator: torch.Generator) -> torch.Tensor:
    """The training images of one epoch with a random `share` of them replaced by drawings of
    themselves (labels unchanged). Drawn once per epoch rather than per batch: a few large kernels
    instead of hundreds of small ones per step."""
    chosen = torch.nonzero(torch.rand(len(x_u8), generator=generator) < share).flatten()
    if len(chosen) == 0:
        return x_u8
    chosen = chosen.to(x_u8.device)
    out = x_u8.clone()
    out[chosen] = draw(x_u8[chosen], outline, rotate, generator)
    return out
