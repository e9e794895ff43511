"""Do seed-exploration drafts predict the refinement? Measured with the release binary on the demo model.

For each of the 40 held-out captions (seed = caption index), `sd3 generate` renders the refinement (the model's
defaults.json: 64x64, 20 steps) and one draft per setting given, then evaluate.py reads shape, shape colour,
position and background from each. A draft agrees when it reads the same shape, colour and position as its
refinement (what a person picks a seed by); the background is reported too.

A setting is SCALE:STEPS, as the studio's DraftSettings takes them (draft side = SCALE x the full side, to the
nearest multiple of 16; STEPS capped at the refinement's steps). `0.5:8` was the studio's draft before drafts
were made at the full size, `1:8` is the one after (Sources/StudioCore/Exploration.swift).

    python scripts/demo-model/draft_agreement.py [--sd3 .build/release/sd3] [--drafts 0.5:8 1:8] [--unplaced] [--json out.json]

--unplaced drops the captions' position phrases ("a red circle on a blue background"): the seed then picks the
cell, which is what a draft must show before the refinement is made.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import torch

import dataset as ds
import evaluate as ev

ROOT = pathlib.Path(__file__).resolve().parents[2]


def draft_side(full, scale, multiple=16):
    """DraftSettings.side: scaled, rounded to the nearest multiple of 16, at least 16 and at most the full side."""
    rounded = int(round(full * scale / multiple)) * multiple
    return max(multiple, min(rounded, max(multiple, full)))


def generate(sd3, model, caption, seed, side, steps, out, env):
    cmd = [sd3, "generate", "--model", model, "--prompt", caption, "-W", str(side), "-H", str(side), "--steps", str(steps),
           "--seed", str(seed), "--threads", "1", "-o", str(out)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} failed:\n{result.stdout}{result.stderr}")


def agreement(drafts, refined, attrs=(0, 1, 2)):
    """Fraction of images whose draft reads the same (shape, colour, position) as the refinement."""
    return float(np.mean([all(d[k] == r[k] for k in attrs) for d, r in zip(drafts, refined)]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sd3", default=str(ROOT / ".build/release/sd3"))
    ap.add_argument("--model", default=str(ROOT / "models/sd3-demo"))
    ap.add_argument("--drafts", nargs="+", default=["0.5:8", "1:8"], help="SCALE:STEPS settings to measure")
    ap.add_argument("--count", type=int, default=len(ds.HELD_OUT_CAPTIONS), help="held-out captions used (from 00)")
    ap.add_argument("--unplaced", action="store_true",
                    help="the held-out captions without their position phrase: where the shape goes is up to the seed")
    ap.add_argument("--out", help="keep the PNGs here (default: a temporary folder)")
    ap.add_argument("--json", help="write the per-image readings and the agreements here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    defaults = json.loads((pathlib.Path(args.model) / "defaults.json").read_text())
    full, steps = defaults["width"], defaults["steps"]
    assert defaults["height"] == full, "square models only"
    settings = []
    for text in args.drafts:
        scale, draft_steps = text.split(":")
        settings.append((text, draft_side(full, float(scale)), min(int(draft_steps), steps)))
    folder = pathlib.Path(args.out or tempfile.mkdtemp(prefix="draft-agreement-"))
    folder.mkdir(parents=True, exist_ok=True)
    # No config file: the model's defaults.json and nothing else (as ExploreSessionTests does).
    env = dict(os.environ, XDG_CONFIG_HOME=str(folder / "no-config"), XDG_DATA_HOME=str(folder / "data"))
    captions = ds.HELD_OUT_CAPTIONS[:args.count]
    targets = ds.HELD_OUT[:args.count]
    if args.unplaced:
        targets = [(s, c, None, b) for s, c, _, b in targets]
        captions = [ds.caption(*t) for t in targets]
    runs = [("refined", full, steps)] + settings
    readings = {}
    for name, side, n in runs:
        sub = folder / name.replace(":", "_")
        sub.mkdir(exist_ok=True)
        for i, caption in enumerate(captions):
            generate(args.sd3, args.model, caption, i, side, n, sub / f"{i:02d}.png", env)
        # evaluate.py reads 64x64 images; a smaller draft is enlarged as load_png does (bilinear).
        images = np.stack([ev.load_png(sub / f"{i:02d}.png") for i in range(len(captions))])
        readings[name] = ev.score_images(images)
        # Without a position phrase any position is right.
        acc = ev.accuracy(readings[name], [(s, c, p if p else r[2], b) for (s, c, p, b), r in zip(targets, readings[name])])
        print(f"{name:8s} {side}x{side}, {n} steps, against the captions: {ev.format_scores(acc)}")
    report = {"refined": {"side": full, "steps": steps}, "drafts": {}}
    for name, side, n in settings:
        agree = agreement(readings[name], readings["refined"])
        each = {a: agreement(readings[name], readings["refined"], (k,)) for k, a in
                ((0, "shape"), (1, "colour"), (2, "position"), (3, "background"))}
        print(f"draft {name} ({side}x{side}, {n} steps) agrees with the refinement: shape+colour+position {agree:.3f}  "
              + "  ".join(f"{a} {v:.3f}" for a, v in each.items()) + f"  (n={len(captions)})")
        report["drafts"][name] = {"side": side, "steps": n, "agreement": agree, **each,
                                  "readings": [dict(zip(("shape", "colour", "position", "background"), r)) for r in readings[name]]}
    report["refined"]["readings"] = [dict(zip(("shape", "colour", "position", "background"), r)) for r in readings["refined"]]
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
