"""Scores 64x64 images of the shapes world by background colour, shape colour, shape and position.

For each image (uint8 RGB):
  background  the outer 2-pixel ring, each pixel mapped to the nearest palette colour; the most frequent wins.
              The measured background colour is the median of the ring pixels of that class.
  shape colour  pixels farther than half the palette gap from the measured background form a first mask; the
              median of its farther half (the shape's core, not its anti-aliased edge) -> nearest palette colour.
  mask        each pixel projected on the segment background -> measured shape colour: the soft map (0..1, for a
              clean render the pixel's coverage); more than half way = shape; its largest 8-connected component
              is the shape.
  position    the centre of the component's bounding box -> 3 x 3 grid (lines at 64/3, 128/3). The box centre,
              not the centroid: shapes are placed by their box, and a triangle's or heart's centroid is off-centre.
  shape       every shape of dataset.ALL_SHAPES (the six and the concept's moon) is rendered (same renderer as the
              dataset) to fill that bounding box, also enlarged by 12% and 25% (blur eats a star's tips, shrinking
              the box), each also blurred (Gaussian, 0.8 and 1.4 px: generated edges are soft); the shape of the
              template with the highest soft IoU (sum min / sum max) with the soft map near the component wins.

    python evaluate.py --self-test                      # asserts 1.0 on clean renders (held-out + training, and moons)
    python evaluate.py --images DIR [--contact-sheet sheet.png] [--json scores.json]
        DIR holds NN.png for held-out caption NN (00..39; dataset.HELD_OUT_CAPTIONS order; any size, resized to 64)
    python evaluate.py --pairs pairs.json ...           # a JSON list of [caption, png path] pairs instead
"""
import argparse
import json
import pathlib
import sys

import numpy as np
import torch

import dataset as ds

ATTRS = ("background", "colour", "shape", "position")
_PAL = ds.PALETTE_RGB  # (8, 3) float32
_GAP = (np.linalg.norm(_PAL[:, None] - _PAL[None], axis=-1) + np.eye(len(_PAL)) * 1e9).min(1)  # nearest other colour


def nearest_colour(rgb):
    return int(np.linalg.norm(_PAL - np.asarray(rgb, np.float32), axis=-1).argmin())


def largest_component(mask):
    """Largest 8-connected component of a boolean (H, W) mask (plain flood fill; images are small)."""
    h, w = mask.shape
    label = np.zeros((h, w), np.int32)
    best, best_size, current = 0, 0, 0
    for y0, x0 in zip(*np.nonzero(mask)):
        if label[y0, x0]:
            continue
        current += 1
        label[y0, x0] = current
        stack, size = [(y0, x0)], 0
        while stack:
            y, x = stack.pop()
            size += 1
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    yy, xx = y + dy, x + dx
                    if 0 <= yy < h and 0 <= xx < w and mask[yy, xx] and not label[yy, xx]:
                        label[yy, xx] = current
                        stack.append((yy, xx))
        if size > best_size:
            best, best_size = current, size
    return label == best if best else np.zeros_like(mask)


def analyse(img):
    """Background index, shape-colour index, component mask and box (x0, y0, x1, y1) of one (H, W, 3) uint8 image."""
    img = img.astype(np.float32)
    h, w, _ = img.shape
    ring = np.concatenate([img[:2].reshape(-1, 3), img[-2:].reshape(-1, 3), img[2:-2, :2].reshape(-1, 3),
                           img[2:-2, -2:].reshape(-1, 3)])
    ring_class = np.linalg.norm(ring[:, None] - _PAL[None], axis=-1).argmin(1)
    bg = int(np.bincount(ring_class, minlength=len(_PAL)).argmax())
    bg_rgb = np.median(ring[ring_class == bg], axis=0)
    dist = np.linalg.norm(img - bg_rgb, axis=-1)
    first = dist > _GAP[bg] / 2
    if not first.any():
        return bg, None, None, None
    core = dist >= np.median(dist[first])
    fg_rgb = np.median(img[first & core], axis=0)
    colour = nearest_colour(fg_rgb)
    axis = fg_rgb - bg_rgb
    t = ((img - bg_rgb) @ axis) / max(float(axis @ axis), 1e-6)
    mask = largest_component(t > 0.5)
    if not mask.any():
        return bg, colour, None, None
    ys, xs = np.nonzero(mask)
    box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    # The soft shape map (fraction of the way from background to shape colour), kept near the component only.
    near = np.zeros_like(mask)
    near[max(box[1] - 3, 0):box[3] + 3, max(box[0] - 3, 0):box[2] + 3] = True
    return bg, colour, np.clip(t, 0, 1) * near, box


SCALES = (1.0, 1.12, 1.25)  # box enlargements tried: blur eats pointed tips, shrinking the measured box
BLURS = (0.0, 0.8, 1.4)  # Gaussian blurs (pixels) applied to the templates: generated edges are often soft


def _gaussian(sigma, radius=3):
    if sigma == 0:
        g = torch.zeros(2 * radius + 1)
        g[radius] = 1
    else:
        g = torch.exp(-torch.arange(-radius, radius + 1, dtype=torch.float32) ** 2 / (2 * sigma ** 2))
    return (g[:, None] * g[None]) / g.sum() ** 2


def _scaled(box, s):
    cx, cy, hw, hh = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, (box[2] - box[0]) / 2 * s, (box[3] - box[1]) / 2 * s
    return cx - hw, cy - hh, cx + hw, cy + hh


def score_images(images, device="cpu"):
    """Predicted (shape, colour, position, background) names per image; None for what cannot be found.

    images: (n, 64, 64, 3) uint8 numpy array."""
    found = [analyse(img) for img in images]
    with_box = [i for i, f in enumerate(found) if f[3] is not None]
    best = {}
    k, m = len(ds.ALL_SHAPES), len(SCALES)
    blurs = torch.stack([_gaussian(s) for s in BLURS])[:, None].to(device)  # (b, 1, 7, 7)
    for start in range(0, len(with_box), 32):  # templates for 32 images at a time
        chunk = with_box[start:start + 32]
        boxes = np.array([_scaled(found[i][3], s) for i in chunk for s in SCALES for _ in range(k)], np.float32)
        ids = np.tile(np.arange(k), len(chunk) * m)
        cov = ds.coverage(ids, boxes, device=device)[:, None]  # (chunk * scales * shapes, 1, H, W)
        tmpl = torch.nn.functional.conv2d(torch.nn.functional.pad(cov, (3, 3, 3, 3)), blurs)  # every blur level
        nb, h, w = tmpl.shape[1:]  # (chunk * scales * shapes, blurs, H, W) -> (chunk, scales * blurs, shapes, H, W)
        tmpl = tmpl.reshape(len(chunk), m, k, nb, h, w).transpose(2, 3).reshape(len(chunk), m * nb, k, h, w).cpu().numpy()
        for j, i in enumerate(chunk):
            soft = found[i][2][None, None]
            iou = np.minimum(tmpl[j], soft).sum((-1, -2)) / np.maximum(np.maximum(tmpl[j], soft).sum((-1, -2)), 1e-6)
            best[i] = int(iou.max(0).argmax())  # best over scale and blur, per shape
    preds = []
    size = images.shape[1]
    for i, (bg, colour, mask, box) in enumerate(found):
        position = None
        if box is not None:
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            col, row = min(int(cx * 3 / size), 2), min(int(cy * 3 / size), 2)
            position = ds.POSITIONS[row * 3 + col]
        preds.append((ds.ALL_SHAPES[best[i]] if i in best else None, None if colour is None else ds.COLOURS[colour],
                      position, ds.COLOURS[bg]))
    return preds


def accuracy(preds, targets):
    """Fractions right per attribute and for all four, given (shape, colour, position, background) tuples."""
    n = len(targets)
    right = np.array([[p[0] == t[0], p[1] == t[1], p[2] == t[2], p[3] == t[3]] for p, t in zip(preds, targets)])
    return {"background": right[:, 3].mean(), "colour": right[:, 1].mean(), "shape": right[:, 0].mean(),
            "position": right[:, 2].mean(), "all": right.all(1).mean(), "n": n} if n else {}


def format_scores(acc):
    return (f"background {acc['background']:.3f}  shape colour {acc['colour']:.3f}  shape {acc['shape']:.3f}  "
            f"position {acc['position']:.3f}  all four {acc['all']:.3f}  (n={int(acc['n'])})")


def load_png(path, size=ds.SIZE):
    from PIL import Image
    img = Image.open(path).convert("RGB")
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    return np.asarray(img)


def contact_sheet(images, targets, preds, path, cols=8, scale=2):
    """A grid: each image enlarged, its index and caption words, and what the scorer got wrong (red)."""
    from PIL import Image, ImageDraw
    size = images.shape[1] * scale
    cell_w, cell_h = max(size, 160) + 8, size + 56
    rows = (len(images) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * cell_w, rows * cell_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (img, t, p) in enumerate(zip(images, targets, preds)):
        x, y = (i % cols) * cell_w + 4, (i // cols) * cell_h + 2
        sheet.paste(Image.fromarray(img).resize((size, size), Image.NEAREST), (x + (cell_w - 8 - size) // 2, y))
        draw.text((x, y + size + 2), f"{i:02d} {t[1]} {t[0]}", fill=(0, 0, 0))
        draw.text((x, y + size + 14), f"{t[2]} / {t[3]} bg", fill=(0, 0, 0))
        wrong = [f"{a}:{p[k] or '-'}" for k, a in ((0, "sh"), (1, "col"), (2, "pos"), (3, "bg")) if p[k] != t[k]]
        for line, part in enumerate((wrong[:2], wrong[2:]) if wrong else (["ok"],)):
            draw.text((x, y + size + 26 + 12 * line), " ".join(part), fill=(200, 0, 0) if wrong else (0, 130, 0))
    sheet.save(path)


def self_test(n_train=500, device="cpu"):
    """The scorer must be exactly right on clean renders: all 40 held-out combinations + n_train training draws, and
    the concept's (concept.py) 20 held-out moons + its 484 training combinations."""
    import concept
    cases = [("held-out", ds.held_out_params(seed), ds.HELD_OUT) for seed in range(3)]
    idx, params = ds.sample_training(np.random.default_rng(1234), n_train)
    cases.append(("training", params, [ds.TRAIN_COMBOS[i] for i in idx]))
    cases += [("moon held-out", concept.moon_params(np.random.default_rng(seed), concept.HELD_OUT), concept.HELD_OUT)
              for seed in range(3)]
    cases.append(("moon training", concept.moon_params(np.random.default_rng(1234), concept.TRAIN_COMBOS),
                  concept.TRAIN_COMBOS))
    for name, params, targets in cases:
        images = ds.to_uint8(torch.cat(list(ds.render_batches(params, 256, device))))
        acc = accuracy(score_images(images, device), targets)
        print(f"self-test {name}: {format_scores(acc)}")
        assert all(acc[a] == 1.0 for a in ("background", "colour", "shape", "position", "all")), f"scorer not exact on {name}"
    print("self-test passed")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--n", type=int, default=500, help="training draws in the self-test")
    ap.add_argument("--images", help="folder of NN.png, NN = held-out caption index")
    ap.add_argument("--pairs", help="JSON list of [caption, png path] pairs (paths relative to the JSON file)")
    ap.add_argument("--contact-sheet", help="write a labelled grid of the scored images here (PNG)")
    ap.add_argument("--json", help="write per-image predictions and the accuracies here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.self_test:
        self_test(args.n)
    if not (args.images or args.pairs):
        return
    if args.images:
        files = sorted(pathlib.Path(args.images).glob("[0-9]*.png"), key=lambda p: int(p.stem))
        pairs = [(ds.HELD_OUT_CAPTIONS[int(p.stem)], p) for p in files]
    else:
        base = pathlib.Path(args.pairs).parent
        pairs = [(c, base / p) for c, p in json.loads(pathlib.Path(args.pairs).read_text())]
    targets = [ds.parse_caption(c) for c, _ in pairs]
    bad = [c for (c, _), t in zip(pairs, targets) if t is None]
    if bad or not pairs:
        sys.exit(f"error: no images, or captions outside the grammar: {bad[:3]}")
    images = np.stack([load_png(p) for _, p in pairs])
    preds = score_images(images)
    acc = accuracy(preds, targets)
    print(format_scores(acc))
    if args.contact_sheet:
        contact_sheet(images, targets, preds, args.contact_sheet)
    if args.json:
        rows = [{"caption": c, "file": str(p), "predicted": dict(zip(("shape", "colour", "position", "background"), pr))}
                for (c, p), pr in zip(pairs, preds)]
        scores = {k: (int(v) if k == "n" else float(v)) for k, v in acc.items()}
        pathlib.Path(args.json).write_text(json.dumps({"scores": scores, "images": rows},
                                                      indent=1))


if __name__ == "__main__":
    main()
