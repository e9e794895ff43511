"""A concept the demo model has never seen, for teaching it with `sd3 train-lora`: the moon.

The moon is a crescent (dataset.py's "moon", in ALL_SHAPES but not in SHAPES: no image the demo model was trained on
has one), drawn by dataset.py's renderer in the demo's colours, positions and backgrounds and captioned in its
grammar: "a white moon at the top left on a blue background". Its box is taller than wide, so it is drawn 20-26 px
tall (the other shapes' width range) and as wide as its proportions give (16-21 px); its centre is jittered as theirs.

Of the 504 (colour, position, background) combinations (colour != background), 20 are held out by a formula (every
colour 2-3 times as shape colour and as background, every position 2-3 times); the 50 training images are
combinations drawn from the other 484 with numpy's Generator(seed), each once. Every image is a fresh draw of size and
offset. Same seed, same bytes.

With --prior N the folder also gets N images of the world the demo model was trained on (dataset.sample_training:
its training combinations only, never its 40 held-out ones; 20% of captions without the position, as in its
training), named pNN.png: DreamBooth's prior preservation done through the data, since `sd3 train-lora` trains on one
folder. Without them a LoRA that learns the moon also turns the other shapes into moons. --prior-extra SHAPE:N adds N
more of one shape (drawn the same way, its training combinations only): the pointed shapes, star and cross, are the ones
a moon LoRA blunts or turns into moons.

    python concept.py --out DIR [--seed 0] [--count 50] [--repeat 1] [--prior 0] [--preview grid.png]
        DIR/data/NN.png + NN.txt      the training folder for `sd3 train-lora --data DIR/data` (and pNN.png + pNN.txt)
        DIR/heldout.json              the 20 held-out captions (the concept's evaluation set, seed = index)
        DIR/heldout-reference/NN.png  clean renders of the held-out captions (what the evaluator must read exactly)
"""
import argparse
import json
import pathlib

import numpy as np
import torch

import dataset as ds

CONCEPT = "moon"
HELD_OUT_COUNT = 20


def concept_combos():
    """Every (moon, colour, position, background) with colour != background, in a fixed order."""
    return [(CONCEPT, c, p, b) for c in ds.COLOURS for p in ds.POSITIONS for b in ds.COLOURS if c != b]


def held_out_combos():
    """20 combinations by a formula (no RNG): i has colour i mod 8, position 5i mod 9 (5 is prime to 9) and the
    background 1 + (3i div 8) mod 7 places after its colour, so the (colour, background) pairs differ."""
    pick = []
    for i in range(HELD_OUT_COUNT):
        c = i % len(ds.COLOURS)
        b = (c + 1 + (3 * i // len(ds.COLOURS)) % (len(ds.COLOURS) - 1)) % len(ds.COLOURS)
        pick.append((CONCEPT, ds.COLOURS[c], ds.POSITIONS[5 * i % len(ds.POSITIONS)], ds.COLOURS[b]))
    _, c, p, b = (set(x) for x in zip(*pick))
    assert len(set(pick)) == HELD_OUT_COUNT and all(x[1] != x[3] for x in pick)
    assert c == set(ds.COLOURS) and p == set(ds.POSITIONS) and b == set(ds.COLOURS)
    return pick


HELD_OUT = held_out_combos()
HELD_OUT_CAPTIONS = [ds.caption(*c) for c in HELD_OUT]
TRAIN_COMBOS = [c for c in concept_combos() if c not in set(HELD_OUT)]


def moon_params(rng, combos):
    """dataset.sample_params for moon combinations, the width narrowed so the box's height is in SIZE_RANGE."""
    params = ds.sample_params(rng, combos)
    params["width"] = params["width"] / ds.ASPECT[CONCEPT]
    return params


def training_set(seed=0, count=50):
    """count distinct training combinations drawn with Generator(seed), and their drawn params."""
    rng = np.random.default_rng(seed)
    pick = [TRAIN_COMBOS[i] for i in rng.choice(len(TRAIN_COMBOS), count, replace=False)]
    return pick, moon_params(rng, pick)


def prior_set(seed=0, count=0, extra=()):
    """count images of the demo's own training world, drawn with Generator([seed, 1]), then for each (shape, n) of
    extra n images of that shape's training combinations, drawn with Generator([seed, 2 + k]): (captions, params)."""
    idx, params = ds.sample_training(np.random.default_rng([seed, 1]), count, no_position=ds.NO_POSITION)
    captions, parts = [ds.TRAIN_CAPTIONS[i] for i in idx], [params]
    for k, (shape, n) in enumerate(extra):
        rng = np.random.default_rng([seed, 2 + k])
        pool = [c for c in ds.TRAIN_COMBOS if c[0] == shape]
        combos = [pool[i] for i in rng.integers(0, len(pool), n)]
        drop = rng.random(n) < ds.NO_POSITION
        captions += [ds.caption(s, c, None if d else p, b) for (s, c, p, b), d in zip(combos, drop)]
        parts.append(ds.sample_params(rng, combos))
    return captions, {key: np.concatenate([p[key] for p in parts]) for key in params}


def save_pngs(images, folder, captions=None, prefix="", suffix=""):
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    for k, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{prefix}{k:02d}{suffix}.png")
        if captions is not None:
            (folder / f"{prefix}{k:02d}{suffix}.txt").write_text(captions[k] + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--prior", type=int, default=0, help="also this many images of the demo's own world (pNN.png)")
    ap.add_argument("--prior-extra", action="append", default=[], metavar="SHAPE:N",
                    help="and N more prior images of SHAPE (repeatable)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="write each training image this many times (kohya's repeats: NN.png, NNrJ.png), so that many "
                         "prior images can sit beside the 50 without lowering the moon's share of the steps")
    ap.add_argument("--preview", help="also save the training images as one grid (PNG)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = pathlib.Path(args.out)
    if (out / "data").exists():
        for old in (out / "data").iterdir():  # a rerun with another --count or --prior leaves no stray image
            old.unlink()
    combos, params = training_set(args.seed, args.count)
    images = ds.to_uint8(ds.render(params))
    captions = [ds.caption(*c) for c in combos]
    assert all(ds.parse_caption(t) == c for t, c in zip(captions, combos))
    save_pngs(images, out / "data", captions)
    for j in range(1, args.repeat):
        save_pngs(images, out / "data", captions, suffix=f"r{j}")
    if args.prior or args.prior_extra:
        extra = [(t.split(":")[0], int(t.split(":")[1])) for t in args.prior_extra]
        assert all(s in ds.SHAPES and n > 0 for s, n in extra), f"--prior-extra takes SHAPE:N, SHAPE one of {ds.SHAPES}"
        prior_captions, prior_params = prior_set(args.seed, args.prior, extra)
        save_pngs(ds.to_uint8(ds.render(prior_params)), out / "data", prior_captions, prefix="p")
    reference = ds.to_uint8(ds.render(moon_params(np.random.default_rng(args.seed + 1), HELD_OUT)))
    save_pngs(reference, out / "heldout-reference")
    (out / "heldout.json").write_text(json.dumps({"concept": CONCEPT, "captions": HELD_OUT_CAPTIONS}, indent=1) + "\n")
    colours, positions, backgrounds = (sorted({c[k] for c in combos}) for k in (1, 2, 3))
    print(f"{len(combos)} training images of '{CONCEPT}' in {out / 'data'}: {len(colours)} colours, {len(positions)} "
          f"positions, {len(backgrounds)} backgrounds; {len(list((out / 'data').glob('p*.png')))} of the demo's world; {len(HELD_OUT)} held-out "
          f"captions in {out / 'heldout.json'}")
    if args.preview:
        from PIL import Image
        cols = 10
        rows = (len(images) + cols - 1) // cols
        grid = np.full((rows * ds.SIZE, cols * ds.SIZE, 3), 255, np.uint8)
        for k, img in enumerate(images):
            grid[k // cols * ds.SIZE:(k // cols + 1) * ds.SIZE, k % cols * ds.SIZE:(k % cols + 1) * ds.SIZE] = img
        Image.fromarray(grid).save(args.preview)
        print(f"wrote {args.preview}")


if __name__ == "__main__":
    main()
