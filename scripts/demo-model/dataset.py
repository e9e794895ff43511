"""The demo model's world: one shape of one colour at one of 9 positions on a plain background of another colour.

    "a red circle at the top left on a blue background", "an orange star in the center on a white background"
    "a yellow triangle on a purple background" (no position phrase: the shape may be in any of the 9 cells)

Everything here is deterministic. Parameters (which combination, size, offset) are drawn with numpy's
Generator from an explicit seed; pixels are rendered with torch (batched, on the CPU or a GPU) by testing
ss x ss sample points per pixel against an analytic inside-test of the shape (anti-aliasing by supersampling),
then blending shape and background colours by the covered fraction. On one device the same seed gives the same
bytes; CPU and CUDA can differ only where a sample point lies on a shape's edge to float32 rounding.

A fixed list of 40 (shape, colour, position, background) combinations is held out: it is never drawn for
training (VAE or MMDiT) and is what the evaluator generates. It is made by a formula (held_out_combos) so that
every shape, every position and every colour (as shape colour and as background) occurs several times.

    python dataset.py --preview grid.png      # prints the world's sizes and the held-out captions, saves samples
"""
import argparse
import itertools
import math
import re

import numpy as np
import torch

SIZE = 64  # image side, pixels
SS = 4  # supersampling: SS x SS inside-tests per pixel

# Colours picked far apart in RGB (smallest pairwise distance is printed by --preview, about 110 of 441).
PALETTE = {
    "red": (210, 25, 45),
    "orange": (250, 125, 10),
    "yellow": (245, 235, 60),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "purple": (140, 50, 180),
    "white": (245, 245, 245),
    "black": (25, 25, 25),
}
COLOURS = list(PALETTE)
PALETTE_RGB = np.array([PALETTE[c] for c in COLOURS], dtype=np.float32)  # (8, 3), 0..255

SHAPES = ["circle", "square", "triangle", "star", "cross", "heart"]
# Height / width of each shape as drawn (the width is the drawn size): the natural proportions.
ASPECT = {"circle": 1.0, "square": 1.0, "triangle": 0.87, "star": 0.95, "cross": 1.0, "heart": 0.95}
# Shapes the demo model was never trained on; concept.py draws one to teach it with a LoRA
# (models/sd3-demo/concepts/README.md). Kept out of SHAPES, so the training combinations and the 40 held-out ones are
# unchanged; they follow SHAPES in ALL_SHAPES (the renderer's and the caption parser's list), so the indices of the
# six stay the same.
CONCEPT_SHAPES = ["moon"]
ALL_SHAPES = SHAPES + CONCEPT_SHAPES
# The moon: the unit disc less a disc of radius 0.8 centred at (0.45, 0), a crescent opening to the right whose horn
# tips are where the two circles meet, at x = (1 + 0.45^2 - 0.8^2) / (2 * 0.45) = 0.625. Its box is x in [-1, 0.625],
# y in [-1, 1]: taller than wide (concept.py draws it 20-26 px tall, so its box stays in the image like the others').
MOON_OFFSET, MOON_INNER = 0.45, 0.8
MOON_TIP_X = (1 + MOON_OFFSET ** 2 - MOON_INNER ** 2) / (2 * MOON_OFFSET)
ASPECT["moon"] = 2 / (1 + MOON_TIP_X)

# 3 x 3 grid; caption phrase for each cell. Cells are (column, row) with 0 = left / top.
POSITIONS = ["top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right"]
PHRASE = {"top left": "at the top left", "top": "at the top", "top right": "at the top right",
          "left": "on the left", "center": "in the center", "right": "on the right",
          "bottom left": "at the bottom left", "bottom": "at the bottom", "bottom right": "at the bottom right"}
CELL = {p: (i % 3, i // 3) for i, p in enumerate(POSITIONS)}
CENTRES = (15.0, 32.0, 49.0)  # shape-box centre per column/row (pixels); the grid lines are at 64/3 and 128/3
JITTER = 2.0  # uniform offset of the centre in each axis, pixels
SIZE_RANGE = (20.0, 26.0)  # drawn width, pixels: the box never leaves the image (15 - 2 - 26 / 2 = 0) and its
# centre stays 4 px off a grid line. Wider than the first model's 17-23: a 5-point star or a heart needs room at 16x16
# latents (its VAE reconstructed 11% of shapes as a different shape).
NO_POSITION = 0.2  # fraction of MMDiT training captions that leave the position out

HELD_OUT_COUNT = 40


def article(word):
    return "an" if word[0] in "aeiou" else "a"


def caption(shape, colour, position, background):
    """The one caption grammar: '<a|an> <colour> <shape> [<position phrase>] on <a|an> <background> background'
    (position None: no phrase)."""
    where = f" {PHRASE[position]}" if position else ""
    return f"{article(colour)} {colour} {shape}{where} on {article(background)} {background} background"


_CAPTION_RE = re.compile(r"^(?:a|an) (\w+) (\w+)(?: (at the top left|at the top right|at the top|on the left|in the center|"
                         r"on the right|at the bottom left|at the bottom right|at the bottom))? on (?:a|an) (\w+) background$")
_PHRASE_TO_POSITION = {v: k for k, v in PHRASE.items()}


def parse_caption(text):
    """Inverse of caption(): (shape, colour, position or None, background), or None if the text is not in the grammar."""
    m = _CAPTION_RE.match(text.strip().lower())
    if not m or m[1] not in PALETTE or m[2] not in ALL_SHAPES or m[4] not in PALETTE:
        return None
    return m[2], m[1], _PHRASE_TO_POSITION[m[3]] if m[3] else None, m[4]


def all_combos():
    """Every valid (shape, colour, position, background), in a fixed order (colour != background)."""
    return [(s, c, p, b) for s, c, p, b in itertools.product(SHAPES, COLOURS, POSITIONS, COLOURS) if c != b]


def held_out_combos():
    """40 combinations by a fixed formula (no RNG, so no library version can change them): combination i has shape
    i mod 6, colour i mod 8, position 4i mod 9 (4 is prime to 9: all 9 occur) and the background colour
    1 + i div 8 places after its colour. Every shape occurs 6-7 times, every position 4-5 times, every colour 5 times
    as shape colour and 5 times as background; the (colour, background) pairs are all different."""
    pick = []
    for i in range(HELD_OUT_COUNT):
        c = i % len(COLOURS)
        pick.append((SHAPES[i % len(SHAPES)], COLOURS[c], POSITIONS[4 * i % len(POSITIONS)],
                     COLOURS[(c + 1 + i // len(COLOURS)) % len(COLOURS)]))
    s, c, p, b = (set(x) for x in zip(*pick))
    assert len(set(pick)) == HELD_OUT_COUNT and all(x[1] != x[3] for x in pick)
    assert s == set(SHAPES) and p == set(POSITIONS) and c == set(COLOURS) and b == set(COLOURS)
    return pick


HELD_OUT = held_out_combos()
HELD_OUT_CAPTIONS = [caption(*c) for c in HELD_OUT]
TRAIN_COMBOS = [c for c in all_combos() if c not in set(HELD_OUT)]
# (shape, colour, background) without a position, each drawn in any cell not held out for it
UNPLACED = sorted({(s, c, b) for s, c, _, b in TRAIN_COMBOS}, key=lambda t: (SHAPES.index(t[0]), COLOURS.index(t[1]), COLOURS.index(t[2])))
_UNPLACED_INDEX = {t: i for i, t in enumerate(UNPLACED)}
# Caption i < len(TRAIN_COMBOS) is TRAIN_COMBOS[i]'s; the rest are UNPLACED's, in order.
TRAIN_CAPTIONS = [caption(*c) for c in TRAIN_COMBOS] + [caption(s, c, None, b) for s, c, b in UNPLACED]


def sample_params(rng, combos):
    """Drawn size and centre for each combination: a dict of numpy arrays (indices into ALL_SHAPES/COLOURS, pixels)."""
    n = len(combos)
    shape = np.array([ALL_SHAPES.index(c[0]) for c in combos])
    col, row = np.array([CELL[c[2]] for c in combos]).T
    return {
        "shape": shape,
        "colour": np.array([COLOURS.index(c[1]) for c in combos]),
        "background": np.array([COLOURS.index(c[3]) for c in combos]),
        "width": rng.uniform(*SIZE_RANGE, n),
        "cx": np.array(CENTRES)[col] + rng.uniform(-JITTER, JITTER, n),
        "cy": np.array(CENTRES)[row] + rng.uniform(-JITTER, JITTER, n),
    }


def sample_training(rng, n, no_position=0.0):
    """n random training combinations (uniform over TRAIN_COMBOS) with their drawn params: (caption indices into
    TRAIN_CAPTIONS, params). With no_position > 0 that fraction of captions leaves the position out (the image
    is the same); with 0 the caption index is the TRAIN_COMBOS index."""
    idx = rng.integers(0, len(TRAIN_COMBOS), n)
    params = sample_params(rng, [TRAIN_COMBOS[i] for i in idx])
    if no_position > 0:
        drop = rng.random(n) < no_position
        unplaced = np.array([len(TRAIN_COMBOS) + _UNPLACED_INDEX[(s, c, b)] for s, c, _, b in (TRAIN_COMBOS[i] for i in idx)])
        idx = np.where(drop, unplaced, idx)
    return idx, params


def boxes_of(params):
    """(n, 4) shape boxes x0, y0, x1, y1 in pixels: width from params, height = width * ASPECT, centred on cx, cy."""
    w = params["width"]
    h = w * np.array([ASPECT[ALL_SHAPES[s]] for s in params["shape"]])
    return np.stack([params["cx"] - w / 2, params["cy"] - h / 2, params["cx"] + w / 2, params["cy"] + h / 2], 1)


# ---- inside-tests in canonical coordinates: u, v in [-1, 1] span the shape's box exactly (v points down) ----

def _star(u, v):
    # Regular 5-point star, outer radius 1, inner radius 0.382 (the pentagram's), one point up. Its natural box is
    # x in [-sin 72, sin 72], y in [-1, cos 36] (y down): map the canonical box onto it.
    x = u * math.sin(math.radians(72))
    y = -1 + (v + 1) / 2 * (1 + math.cos(math.radians(36)))
    r = torch.sqrt(x * x + y * y)
    theta = torch.atan2(x, -y)  # 0 = straight up
    phi = torch.remainder(theta + math.pi / 5, 2 * math.pi / 5) - math.pi / 5  # fold into one point's sector
    px, py = r * torch.cos(phi), r * torch.abs(torch.sin(phi))
    ri = 0.381966
    bx, by = ri * math.cos(math.pi / 5), ri * math.sin(math.pi / 5)  # inner vertex; outer vertex is (1, 0)
    return (bx - 1) * py - by * (px - 1) >= 0  # on the centre's side of the outer->inner edge


def _moon(u, v):
    # Canonical u in [-1, 1] spans the crescent's x in [-1, MOON_TIP_X]; v is y as is.
    x = -1 + (u + 1) / 2 * (1 + MOON_TIP_X)
    return (x * x + v * v <= 1) & ((x - MOON_OFFSET) ** 2 + v * v > MOON_INNER ** 2)


def _heart(u, v):
    # The classic heart curve (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0 (y up); natural box x in [-1.1390, 1.1390],
    # y in [-1, 1.2365] (measured numerically once).
    x = u * 1.1390
    y = 1.2365 - (v + 1) / 2 * 2.2365
    return (x * x + y * y - 1) ** 3 - x * x * y ** 3 <= 0


INSIDE = {
    "circle": lambda u, v: u * u + v * v <= 1,
    "square": lambda u, v: (u.abs() <= 1) & (v.abs() <= 1),
    "triangle": lambda u, v: (u.abs() <= (v + 1) / 2) & (v <= 1),  # apex up, base along the bottom of the box
    "star": _star,
    "cross": lambda u, v: (u.abs() <= 1) & (v.abs() <= 1) & (torch.minimum(u.abs(), v.abs()) <= 1 / 3),
    "heart": _heart,
    "moon": _moon,
}


def coverage(shape_ids, boxes, size=SIZE, ss=SS, device="cpu"):
    """Fraction of each pixel covered by the shape: (n, size, size) float32 in [0, 1].

    shape_ids: n indices into ALL_SHAPES; boxes: (n, 4) x0, y0, x1, y1 in pixels (pixel i spans [i, i+1))."""
    boxes = torch.as_tensor(np.asarray(boxes), dtype=torch.float32, device=device)
    ids = torch.as_tensor(np.asarray(shape_ids), device=device)
    t = (torch.arange(size * ss, device=device, dtype=torch.float32) + 0.5) / ss  # sample-point coordinates
    x0, y0, x1, y1 = (boxes[:, i, None, None] for i in range(4))
    u = (t[None, None, :] - x0) / (x1 - x0) * 2 - 1  # (n, 1, S)
    v = (t[None, :, None] - y0) / (y1 - y0) * 2 - 1  # (n, S, 1)
    u, v = u.expand(-1, size * ss, -1), v.expand(-1, -1, size * ss)
    inside = torch.zeros(len(ids), size * ss, size * ss, dtype=torch.bool, device=device)
    for k, name in enumerate(ALL_SHAPES):
        sel = ids == k
        if sel.any():
            inside[sel] = INSIDE[name](u[sel], v[sel])
    return inside.float().view(len(ids), size, ss, size, ss).mean((2, 4))


def render(params, device="cpu", ss=SS):
    """Images for drawn params: (n, 3, 64, 64) float32 in [0, 1] on `device` (RGB, colours / 255)."""
    cov = coverage(params["shape"], boxes_of(params), ss=ss, device=device)[:, None]
    rgb = torch.as_tensor(PALETTE_RGB / 255.0, device=device)
    fg = rgb[torch.as_tensor(params["colour"], device=device)][:, :, None, None]
    bg = rgb[torch.as_tensor(params["background"], device=device)][:, :, None, None]
    return cov * fg + (1 - cov) * bg


def render_batches(params, batch, device="cpu"):
    """render() in chunks of `batch` images (bounded memory: each image takes 64*64*16 inside-tests)."""
    n = len(params["shape"])
    for i in range(0, n, batch):
        yield render({k: v[i:i + batch] for k, v in params.items()}, device=device)


def held_out_params(seed=0):
    """The 40 held-out combinations with drawn sizes/offsets (for clean references and VAE checks)."""
    return sample_params(np.random.default_rng(seed), HELD_OUT)


def to_uint8(images):
    """(n, 3, H, W) in [0, 1] (or [-1, 1] with signed=True upstream) -> (n, H, W, 3) uint8 numpy."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preview", help="save a grid of 8 x 8 random training images here (PNG)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    d = np.linalg.norm(PALETTE_RGB[:, None] - PALETTE_RGB[None], axis=-1) + np.eye(len(COLOURS)) * 1e9
    i, j = np.unravel_index(d.argmin(), d.shape)
    print(f"{len(SHAPES)} shapes x {len(COLOURS)} colours x {len(POSITIONS)} positions x {len(COLOURS) - 1} backgrounds"
          f" = {len(all_combos())} combinations: {len(TRAIN_COMBOS)} for training, {len(HELD_OUT)} held out;"
          f" {len(UNPLACED)} captions without a position")
    print(f"closest colours: {COLOURS[i]} / {COLOURS[j]} at RGB distance {d[i, j]:.0f}")
    for k, text in enumerate(HELD_OUT_CAPTIONS):
        assert parse_caption(text) == HELD_OUT[k]
        print(f"{k:02d} {text}")
    assert all(parse_caption(text) == (s, c, None, b) for text, (s, c, b) in zip(TRAIN_CAPTIONS[len(TRAIN_COMBOS):], UNPLACED))
    if args.preview:
        from PIL import Image
        _, params = sample_training(np.random.default_rng(args.seed), 64)
        img = to_uint8(render(params)).reshape(8, 8, SIZE, SIZE, 3).transpose(0, 2, 1, 3, 4)
        Image.fromarray(img.reshape(8 * SIZE, 8 * SIZE, 3)).save(args.preview)
        print(f"wrote {args.preview}")


if __name__ == "__main__":
    main()
